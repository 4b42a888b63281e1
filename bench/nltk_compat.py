#!/usr/bin/env python3
"""rnnkit.ngram.nltk_compat against nltk.lm on the pydoc corpus (issue 5).

Both libraries, in one process, on the same text (``../shared/bench/gen_pydoc.py``, written
when missing), order 3 by default, every model:

* fit: ``padded_everygram_pipeline`` + ``fit`` (vocabulary and counts), median of ``--reps``;
* score: ``model.score(word, context)`` for every word of the corpus in its padded sentence,
  one Python call per word (nltk's Kneser-Ney takes ~25 ms per call: it is timed on the first
  ``--kn-words`` words only);
* entropy: ``model.entropy(ngrams)`` of each padded sentence's n-grams, given as tuples, and
  for rnnkit also as the :class:`Grams` that its ``ngrams`` returns (no tuple per n-gram);
  and (rnnkit) of the whole text's n-gram tuples in one call, as ``perplexity`` of a test set
  is often computed (against NLTK's per-sentence rate: NLTK's cost per n-gram does not depend
  on how they are grouped);

and reports words per second and rnnkit / nltk. The scores of both libraries are checked
equal first (on the first ``--kn-words`` words for Kneser-Ney).

    python bench/nltk_compat.py --order 3 --reps 3
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_pydoc.py"
MODELS = [
    ("MLE", ()),
    ("Laplace", ()),
    ("Lidstone", (0.1,)),
    ("StupidBackoff", (0.4,)),
    ("WittenBellInterpolated", ()),
    ("AbsoluteDiscountingInterpolated", ()),
    ("KneserNeyInterpolated", ()),
]


def pydoc_corpus(path: Path) -> list[list[str]]:
    if not path.exists():
        subprocess.run([sys.executable, str(GENERATOR), str(path)], check=True)
    return [line.split() for line in path.read_text().splitlines()]


def timed(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def make(lib: Any, name: str, args: tuple[Any, ...], order: int) -> Any:
    return getattr(lib, name)(*args, order)


def fit(lib: Any, pre: Any, name: str, args: tuple[Any, ...], n: int, text: Any) -> Any:
    lm = make(lib, name, args, n)
    lm.fit(*pre.padded_everygram_pipeline(n, text))
    return lm


def score_all(lm: Any, items: list[tuple[str, tuple[str, ...]]]) -> None:
    for w, c in items:
        lm.score(w, c)


def entropies(lm: Any, ngram_lists: list[Any]) -> list[float]:
    return [lm.entropy(g) for g in ngram_lists]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--kn-words", type=int, default=100)
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/pydoc.txt"))
    a = parser.parse_args()

    import nltk
    import nltk.lm as nltk_lm
    import nltk.lm.preprocessing as nltk_pre
    import rnnkit
    import rnnkit.ngram.nltk_compat as ours
    import rnnkit.ngram.nltk_compat.preprocessing as our_pre
    import rnnkit.ngram.nltk_compat.util as our_util
    from nltk.util import ngrams as nltk_ngrams

    text = pydoc_corpus(a.corpus)
    n = a.order
    words = sum(len(s) + n - 1 for s in text)  # scored words: the sentence's and the </s>s
    print(f"corpus {a.corpus}: {len(text)} sentences, {sum(map(len, text))} tokens; order {n}")
    print(f"nltk {nltk.__version__}, rnnkit {rnnkit.__version__}, reps {a.reps}\n")
    padded = [list(nltk_pre.pad_both_ends(s, n=n)) for s in text]
    # every (word, context) of the corpus, in order
    pairs = [(p[i], tuple(p[i - n + 1 : i])) for p in padded for i in range(n - 1, len(p))]
    assert len(pairs) == words

    header = [
        "model",
        "fit nltk s",
        "fit rnnkit s",
        "fit x",
        "score nltk w/s",
        "score rnnkit w/s",
        "score x",
        "entropy nltk w/s",
        "entropy rnnkit tuples w/s",
        "x",
        "entropy rnnkit Grams w/s",
        "x",
        "entropy rnnkit whole text w/s",
        "x",
    ]
    rows = []
    for name, args in MODELS:
        t_fit_nltk, theirs = timed(partial(fit, nltk_lm, nltk_pre, name, args, n, text), a.reps)
        t_fit_ours, mine = timed(partial(fit, ours, our_pre, name, args, n, text), a.reps)
        kn = name == "KneserNeyInterpolated"
        sample = pairs[: a.kn_words] if kn else pairs
        for w, c in sample[: a.kn_words]:
            x, y = mine.score(w, c), theirs.score(w, c)
            assert x == y or math.isclose(x, y, rel_tol=1e-12), (name, w, c, x, y)
        t_score_nltk, _ = timed(partial(score_all, theirs, sample), 1 if kn else a.reps)
        t_score_ours, _ = timed(partial(score_all, mine, pairs), a.reps)
        sentences = padded[: max(1, a.kn_words // 10)] if kn else padded
        sent_words = sum(len(p) - n + 1 for p in sentences)
        tuples = [list(nltk_ngrams(p, n)) for p in sentences]
        all_tuples = [list(nltk_ngrams(p, n)) for p in padded]
        grams = [our_util.ngrams(p, n) for p in padded]
        t_ent_nltk, e1 = timed(partial(entropies, theirs, tuples), 1 if kn else a.reps)
        t_ent_tuples, e2 = timed(partial(entropies, mine, all_tuples), a.reps)
        t_ent_grams, e3 = timed(partial(entropies, mine, grams), a.reps)
        whole = [g for t in all_tuples for g in t]
        t_ent_whole, _ = timed(partial(mine.entropy, whole), a.reps)
        assert all(math.isclose(x, y, rel_tol=1e-12) for x, y in zip(e1, e2, strict=False))
        assert all(math.isclose(x, y, rel_tol=1e-12) for x, y in zip(e2, e3, strict=True))
        r_score = (len(sample) / t_score_nltk, words / t_score_ours)
        r_ent = (
            sent_words / t_ent_nltk,
            words / t_ent_tuples,
            words / t_ent_grams,
            len(whole) / t_ent_whole,
        )
        rows.append(
            [
                name,
                f"{t_fit_nltk:.3f}",
                f"{t_fit_ours:.4f}",
                f"{t_fit_nltk / t_fit_ours:.0f}",
                f"{r_score[0]:,.0f}",
                f"{r_score[1]:,.0f}",
                f"{r_score[1] / r_score[0]:.0f}",
                f"{r_ent[0]:,.0f}",
                f"{r_ent[1]:,.0f}",
                f"{r_ent[1] / r_ent[0]:.0f}",
                f"{r_ent[2]:,.0f}",
                f"{r_ent[2] / r_ent[0]:.0f}",
                f"{r_ent[3]:,.0f}",
                f"{r_ent[3] / r_ent[0]:.0f}",
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
