#!/usr/bin/env python3
"""n-gram language models with rnnkit.ngram against KenLM's Python module (issue 5).

Two parts, each measurement in a fresh process:

``build``
    Text -> counts -> modified Kneser-Ney model (``NgramCounts(order).update(text)``,
    ``estimate``) and the ARPA export (``write_arpa``): wall time of each step, the process's
    peak resident memory (VmHWM), n-grams per second of the export. Then, in another process,
    ``rnnkit.ngram.build`` (text file -> binary model file in bounded memory): its wall time
    and peak, and whether its file equals the first process's ``save``. lmplz itself is not
    installed here; its figures for the same corpus are in ``../shared/bench/PEERS.md``.
``query``
    The same ARPA file (written by rnnkit) loaded by rnnkit (``load_arpa``) and by
    ``kenlm.Model``, then the held-out text scored by both in one process, interleaved,
    median of ``--reps``: rnnkit's ``score_batch`` (ids prepared beforehand, all threads) and
    ``score`` per sentence against kenlm's ``Model.score`` per sentence and
    ``list(Model.full_scores)``, in tokens per second (words + ``</s>``); ``score_batch`` also
    on one thread (kenlm's module scores on the calling thread), and ``evaluate`` of the text
    (rnnkit's scoring with the encoding that ``score_batch``'s prepared ids leave out). The
    two libraries' sentence scores are checked equal first. The ARPA file is read once before
    the two loads, so that both read it from the page cache.

Corpora: ``../shared/bench/gen_zipf.py`` (20 M tokens, seed 12345; held-out: 2 M tokens, seed
999), generated when the files are missing.

    python bench/ngram_lm.py build --order 5
    python bench/ngram_lm.py query --order 5 --reps 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _ngram import peak_rss_mib, zipf_corpus


def build_worker(train: str, order: int, arpa: str) -> dict[str, object]:
    from rnnkit.ngram import NgramCounts, estimate

    text = Path(train).read_bytes()
    t0 = time.perf_counter()
    counts = NgramCounts(order).update(text)
    t1 = time.perf_counter()
    model = estimate(counts)
    t2 = time.perf_counter()
    del counts
    model.write_arpa(arpa)
    t3 = time.perf_counter()
    model.save(Path(arpa).with_suffix(".bin"))
    t4 = time.perf_counter()
    ngrams = sum(model.size(n) for n in range(1, order + 1))
    return {
        "count_s": t1 - t0,
        "estimate_s": t2 - t1,
        "arpa_s": t3 - t2,
        "binary_s": t4 - t3,
        "ngrams": ngrams,
        "sizes": [model.size(n) for n in range(1, order + 1)],
        "peak_mib": peak_rss_mib(),
        "model_bytes": model._model.memory_bytes(),
    }


def low_memory_worker(train: str, order: int, binary: str) -> dict[str, object]:
    from rnnkit.ngram import build

    t0 = time.perf_counter()
    build(Path(train), order, binary=binary)
    return {"build_s": time.perf_counter() - t0, "peak_mib": peak_rss_mib()}


def warm_page_cache(path: Path) -> None:
    """Read ``path`` once (64 MiB at a time), so that the loads timed next both read it
    from the page cache: without it the first load (rnnkit's) paid for the disk."""
    with path.open("rb") as f:
        while f.read(64 << 20):
            pass


def query(arpa: Path, held_out: Path, reps: int) -> None:
    import math

    import kenlm
    import numpy as np
    import rnnkit
    from rnnkit.ngram import NgramModel, load_arpa

    threads = rnnkit.get_num_threads()

    binary = arpa.with_suffix(".bin")
    if binary.exists():
        read_s, load_s = [], []
        for _ in range(reps):
            t = time.perf_counter()
            size = len(binary.read_bytes())
            read_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            NgramModel.load(binary)
            load_s.append(time.perf_counter() - t)
        print(
            f"binary model {size / 2**20:.0f} MiB: NgramModel.load {np.median(load_s):.2f} s, "
            f"reading the file's bytes {np.median(read_s):.2f} s (page cache warm, medians)"
        )
    warm_page_cache(arpa)
    t0 = time.perf_counter()
    ours = load_arpa(arpa)
    t1 = time.perf_counter()
    theirs = kenlm.Model(str(arpa))
    t2 = time.perf_counter()
    held_out_text = held_out.read_text()
    sentences = held_out_text.splitlines()
    tokens = sum(len(s.split()) + 1 for s in sentences)
    ids = np.concatenate([ours.vocabulary.encode(s) for s in sentences]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(s.split()) for s in sentences])]).astype(np.int64)
    # Checked before timing (explicit checks: an assert vanishes under python -O): every
    # sentence's score_batch score equals kenlm's, evaluate's total is their sum, and the
    # first sentences' per-sentence scores are equal too.
    expected = [theirs.score(s) for s in sentences]
    if not np.array_equal(ours.score_batch(ids, offsets), expected):
        sys.exit("ABORT: rnnkit score_batch and kenlm Model.score disagree")
    check = sentences[:2000]
    if [ours.score(s) for s in check] != expected[:2000]:
        sys.exit("ABORT: rnnkit score and kenlm Model.score disagree")
    total = ours.evaluate(held_out_text).log10_prob
    if not math.isclose(total, math.fsum(expected), rel_tol=1e-9):
        sys.exit(f"ABORT: rnnkit evaluate's total {total} is not kenlm's {math.fsum(expected)}")

    def batch_one_thread() -> None:
        rnnkit.set_num_threads(1)
        try:
            ours.score_batch(ids, offsets)
        finally:
            rnnkit.set_num_threads(threads)

    keys = ("batch", "batch1", "evaluate", "score", "kenlm", "kenlm_full")
    runs: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(reps):
        t = time.perf_counter()
        ours.score_batch(ids, offsets)
        runs["batch"].append(time.perf_counter() - t)
        t = time.perf_counter()
        batch_one_thread()
        runs["batch1"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ours.evaluate(held_out_text)
        runs["evaluate"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in sentences:
            ours.score(s)
        runs["score"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in sentences:
            theirs.score(s)
        runs["kenlm"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for s in sentences:
            list(theirs.full_scores(s))
        runs["kenlm_full"].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in runs.items()}
    print(
        f"ARPA load (file in the page cache, one load each): rnnkit load_arpa {t1 - t0:.1f} s "
        f"({threads} threads: one parses, one adds), kenlm.Model {t2 - t1:.1f} s (1 thread)"
    )
    print(f"held-out: {len(sentences):,} sentences, {tokens:,} tokens (words + </s>)")
    print(
        "Scorers take turns, median of the repetitions. kenlm's Python module scores on the "
        "calling thread and takes text; rnnkit's score_batch takes ids encoded beforehand "
        "(not timed), evaluate takes the text (its encoding timed), both on the threads shown."
    )
    print("| scorer | input | threads | M tokens/s | vs kenlm Model.score | vs kenlm full_scores |")
    print("|---|---|---:|---:|---:|---:|")
    for name, what, n, key in (
        ("rnnkit score_batch", "ids", threads, "batch"),
        ("rnnkit score_batch", "ids", 1, "batch1"),
        ("rnnkit evaluate", "text", threads, "evaluate"),
        ("rnnkit score (per sentence)", "text", 1, "score"),
        ("kenlm Model.score (per sentence)", "text", 1, "kenlm"),
        ("kenlm list(full_scores) (per sentence)", "text", 1, "kenlm_full"),
    ):
        print(
            f"| {name} | {what} | {n} | {tokens / med[key] / 1e6:.2f} | "
            f"{med['kenlm'] / med[key]:.2f}x | {med['kenlm_full'] / med[key]:.2f}x |"
        )


def run_worker(flag: str, train: Path, order: int, output: Path) -> dict[str, Any]:
    """A worker of the build part in a fresh process (its peak RSS is its own); its JSON."""
    out = subprocess.run(
        [sys.executable, __file__, "build", flag, str(train), str(order), str(output)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["build", "query"])
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--train", type=Path, default=Path("/tmp/zipf20m.txt"))
    parser.add_argument("--held-out", type=Path, default=Path("/tmp/zipf2m_heldout.txt"))
    parser.add_argument("--arpa", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--low-memory-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        train, order, arpa = args.worker
        print(json.dumps(build_worker(train, int(order), arpa)))
        return
    if args.low_memory_worker:
        train, order, binary = args.low_memory_worker
        print(json.dumps(low_memory_worker(train, int(order), binary)))
        return
    arpa = args.arpa or Path(f"/tmp/zipf20m.o{args.order}.arpa")
    zipf_corpus(args.train, 20_000_000, 12345)
    if args.part == "build":
        r = run_worker("--worker", args.train, args.order, arpa)
        print(f"order {args.order}: n-grams per order {r['sizes']}")
        print("| step | seconds |")
        print("|---|---:|")
        print(f"| count (text -> NgramCounts) | {r['count_s']:.1f} |")
        print(f"| estimate (modified Kneser-Ney) | {r['estimate_s']:.1f} |")
        print(f"| text -> model | {r['count_s'] + r['estimate_s']:.1f} |")
        rate = r["ngrams"] / r["arpa_s"] / 1e6
        print(f"| write_arpa | {r['arpa_s']:.1f} ({rate:.2f} M n-grams/s) |")
        print(f"| save (binary) | {r['binary_s']:.1f} |")
        print(
            f"peak RSS {r['peak_mib']:.0f} MiB; model {r['model_bytes'] / r['ngrams']:.1f} "
            "bytes per n-gram"
        )
        low = arpa.with_suffix(".low-memory.bin")
        m = run_worker("--low-memory-worker", args.train, args.order, low)
        same = low.read_bytes() == arpa.with_suffix(".bin").read_bytes()
        print(
            f"rnnkit.ngram.build (text file -> binary model file, bounded memory): "
            f"{m['build_s']:.1f} s, peak RSS {m['peak_mib']:.0f} MiB; "
            f"the same file as count + estimate + save: {same}"
        )
        low.unlink()
        return
    zipf_corpus(args.held_out, 2_000_000, 999)
    if not arpa.exists():
        raise SystemExit(f"{arpa} is missing: run the build part first")
    query(arpa, args.held_out, args.reps)


if __name__ == "__main__":
    main()
