#!/usr/bin/env python3
"""rnnkit.ngram.nltk_compat against nltk.lm on the pydoc corpus (issue 5).

Both libraries, in one process, on the same text (``../shared/bench/gen_pydoc.py``, written
when missing), order 3 by default, every model:

* fit: ``padded_everygram_pipeline`` + ``fit`` (vocabulary and counts) and one ``score``
  (where rnnkit builds its scorer from the counts), median of ``--reps``;
* score: ``model.score(word, context)`` for every word of the corpus in its padded sentence,
  one Python call per word (nltk's Kneser-Ney takes ~25 ms per call: it is timed on the first
  ``--kn-words`` words only);
* entropy: ``model.entropy(ngrams)`` of each padded sentence's n-grams, given as tuples, and
  for rnnkit also as the :class:`Grams` that its ``ngrams`` returns (no tuple per n-gram);
  and (rnnkit) of the whole text's n-gram tuples in one call, as ``perplexity`` of a test set
  is often computed (against NLTK's per-sentence rate: NLTK's cost per n-gram does not depend
  on how they are grouped);

and reports words per second and rnnkit / nltk. The libraries take turns in each
measurement (medians). The scores of both libraries are checked equal before they are timed
(every word nltk is timed on: all of them, the first ``--kn-words`` for Kneser-Ney), the
entropies after.

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


def timed(runs: dict[str, tuple[Callable[[], Any], int]]) -> dict[str, tuple[float, Any]]:
    """``{name: (fn, reps)}`` -> ``{name: (median seconds, last result)}``, the contenders
    taking turns (a, b, a, b, ...; one with fewer reps drops out when it has them)."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    results: dict[str, Any] = {}
    for r in range(max(reps for _, reps in runs.values())):
        for name, (fn, reps) in runs.items():
            if r < reps:
                t = time.perf_counter()
                results[name] = fn()
                times[name].append(time.perf_counter() - t)
    return {k: (statistics.median(v), results[k]) for k, v in times.items()}


def agree(ok: bool, what: str) -> None:
    """Stop the benchmark when the libraries disagree (an ``assert`` would vanish under -O)."""
    if not ok:
        sys.exit(f"ABORT: rnnkit and nltk disagree: {what}")


def make(lib: Any, name: str, args: tuple[Any, ...], order: int) -> Any:
    return getattr(lib, name)(*args, order)


def fit(lib: Any, pre: Any, name: str, args: tuple[Any, ...], n: int, text: Any, first: Any) -> Any:
    """A fitted model, ready to score: the fit, then one ``score`` (rnnkit builds its scorer
    from the counts at the first score, ~0.3-2x the fit's own time; nltk has nothing to
    build), so that this set-up counts in the fit and in neither library's scoring."""
    lm = make(lib, name, args, n)
    lm.fit(*pre.padded_everygram_pipeline(n, text))
    lm.score(*first)
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
        got = timed(
            {
                "nltk": (partial(fit, nltk_lm, nltk_pre, name, args, n, text, pairs[0]), a.reps),
                "rnnkit": (partial(fit, ours, our_pre, name, args, n, text, pairs[0]), a.reps),
            }
        )
        (t_fit_nltk, theirs), (t_fit_ours, mine) = got["nltk"], got["rnnkit"]
        kn = name == "KneserNeyInterpolated"
        sample = pairs[: a.kn_words] if kn else pairs
        for w, c in sample:  # every word timed on nltk's side
            x, y = mine.score(w, c), theirs.score(w, c)
            agree(x == y or math.isclose(x, y, rel_tol=1e-12), f"{name} score {w!r} {c}: {x}, {y}")
        got = timed(
            {
                "nltk": (partial(score_all, theirs, sample), 1 if kn else a.reps),
                "rnnkit": (partial(score_all, mine, pairs), a.reps),
            }
        )
        t_score_nltk, t_score_ours = got["nltk"][0], got["rnnkit"][0]
        sentences = padded[: max(1, a.kn_words // 10)] if kn else padded
        sent_words = sum(len(p) - n + 1 for p in sentences)
        tuples = [list(nltk_ngrams(p, n)) for p in sentences]
        all_tuples = [list(nltk_ngrams(p, n)) for p in padded]
        grams = [our_util.ngrams(p, n) for p in padded]
        whole = [g for t in all_tuples for g in t]
        got = timed(
            {
                "nltk": (partial(entropies, theirs, tuples), 1 if kn else a.reps),
                "tuples": (partial(entropies, mine, all_tuples), a.reps),
                "grams": (partial(entropies, mine, grams), a.reps),
                "whole": (partial(mine.entropy, whole), a.reps),
            }
        )
        (t_ent_nltk, e1), (t_ent_tuples, e2) = got["nltk"], got["tuples"]
        (t_ent_grams, e3), (t_ent_whole, e4) = got["grams"], got["whole"]
        close = partial(math.isclose, rel_tol=1e-12)
        agree(all(map(close, e1, e2[: len(e1)])), f"{name} entropy (tuples)")
        agree(all(map(close, e2, e3)) and len(e2) == len(e3), f"{name} entropy (Grams)")
        if not kn:
            agree(close(e4, theirs.entropy(whole)), f"{name} entropy of the whole text")
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
