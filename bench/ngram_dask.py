#!/usr/bin/env python3
"""N-gram counting on Dask (issue 9): the 20 M-token corpus with 1 and 2 local workers, against
one process, and where the time goes.

For each worker count a ``distributed.LocalCluster`` (worker processes, one thread each) is
started, then ``rnnkit.ngram.dask.count(path, order)`` runs (vocabulary pass, then counting
and the tree merge) ``--reps`` times; the median wall time is reported with the speed-up over
1 worker and over one process (``NgramCounts(order, Vocabulary.build(path text))``, the
same work without Dask). The task stream of the last run gives the seconds spent in each
kind of task (summed over workers) and in transfers between workers. Every run's counts are
checked against the single process's before any time is reported.

    python bench/ngram_dask.py                        # order 5, 1 and 2 workers, 5 partitions
    python bench/ngram_dask.py --blocksize 8MiB       # 10 partitions: a deeper merge

(``count``'s default blocksize, 64 MiB, reads this 85 MiB file as one partition: nothing to
spread. 16 MiB gives 5.)
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from _ngram import zipf_corpus
from distributed import Client, LocalCluster, get_task_stream
from rnnkit.ngram import NgramCounts, Vocabulary
from rnnkit.ngram import dask as ngram_dask


def single_process(path: Path, order: int) -> tuple[float, NgramCounts]:
    start = time.perf_counter()
    text = path.read_text(encoding="utf-8")
    counts = NgramCounts(order, Vocabulary.build(text)).update(text)
    return time.perf_counter() - start, counts


def task_seconds(stream: list[dict]) -> tuple[dict[str, float], float]:
    """Compute seconds per task kind, and transfer seconds, from a task stream."""
    compute: dict[str, float] = defaultdict(float)
    transfer = 0.0
    for task in stream:
        name = task["key"][0] if isinstance(task["key"], tuple) else str(task["key"])
        # Drop the token or uuid Dask appends to the function's name.
        kind = re.sub(r"-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$|-[0-9a-f]{32}$", "", name)
        for part in task["startstops"]:
            seconds = part["stop"] - part["start"]
            if part["action"] == "compute":
                compute[kind] += seconds
            elif part["action"] == "transfer":
                transfer += seconds
    return dict(compute), transfer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/zipf20m.txt"))
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--blocksize", default="16MiB")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    corpus = zipf_corpus(args.corpus)
    print(
        f"corpus {corpus} ({corpus.stat().st_size / 2**20:.0f} MiB), order {args.order}, "
        f"blocksize {args.blocksize}; command: python bench/ngram_dask.py "
        + " ".join(sys.argv[1:]),
        flush=True,
    )
    one_times = []
    expected = None
    for _ in range(args.reps):
        seconds, expected = single_process(corpus, args.order)
        one_times.append(seconds)
    one = statistics.median(one_times)
    print(f"one process: {one:.2f} s (median of {args.reps})", flush=True)
    rows = []
    base = None
    for workers in (int(w) for w in args.workers.split(",")):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            times, vocab_times = [], []
            for _ in range(args.reps):
                with get_task_stream(client) as stream:
                    start = time.perf_counter()
                    got = ngram_dask.count(
                        str(corpus), args.order, client=client, blocksize=args.blocksize
                    )
                    times.append(time.perf_counter() - start)
                vocab_times.append(ngram_dask.last_timings.vocabulary)
                if got != expected:
                    print("counts differ from the single process's", file=sys.stderr)
                    return 1
                del got
            median = statistics.median(times)
            base = base or median
            compute, transfer = task_seconds(stream.data)
            rows.append((workers, median, statistics.median(vocab_times), compute, transfer))
            print(
                f"{workers} worker(s): {median:.2f} s (vocabulary pass "
                f"{statistics.median(vocab_times):.2f} s); speed-up vs 1 worker "
                f"{base / median:.2f}x, vs one process {one / median:.2f}x",
                flush=True,
            )
            phases = ngram_dask.last_timings.phases
            print(
                "  phases (last run): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()),
                flush=True,
            )
            print(
                "  task seconds (last run, all workers): "
                + ", ".join(
                    f"{k} {v:.2f}" for k, v in sorted(compute.items(), key=lambda kv: -kv[1])
                )
                + f"; transfers {transfer:.2f}",
                flush=True,
            )
    print("\n| workers | wall s | vocabulary pass s | vs 1 worker | vs one process |")
    print("|---:|---:|---:|---:|---:|")
    for workers, median, vocab, _, _ in rows:
        print(
            f"| {workers} | {median:.2f} | {vocab:.2f} | {rows[0][1] / median:.2f}x | "
            f"{one / median:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
