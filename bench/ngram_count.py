#!/usr/bin/env python3
"""Counting n-grams with rnnkit.ngram.NgramCounts (issue 5).

Each measurement runs in a fresh process (this script started again as a worker) that reads
the corpus file, counts orders 1..N from its text (tokenizing included) and reports the wall
time of the counting, the distinct n-grams per order, the process's peak resident memory
(VmHWM) and the store's bytes per n-gram. The peer in the same run is Python's
``collections.Counter`` over the same padded sentences (``rnnkit.reference.ngram``, on the first
``--peer-tokens`` tokens only: it needs ~7 GiB for the whole corpus), against rnnkit on that same
prefix; their distinct n-grams and total counts per order are checked to be equal (not
each n-gram's count).

The corpus is ``../shared/bench/gen_zipf.py``'s (20 M tokens, seed 12345), generated into
``--corpus`` when the file is missing. KenLM's lmplz figures for it are in
``../shared/bench/PEERS.md`` (not installed here: they are not side by side).

    python bench/ngram_count.py [--corpus /tmp/zipf20m.txt] [--orders 3 5] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _ngram import peak_rss_mib, zipf_corpus


def worker(kind: str, corpus: str, order: int, tokens: int) -> dict[str, object]:
    text = Path(corpus).read_bytes()
    if tokens:
        # The first `tokens` tokens, cut at a sentence end.
        lines, count = [], 0
        for line in text.decode().splitlines():
            lines.append(line)
            count += len(line.split())
            if count >= tokens:
                break
        text = ("\n".join(lines) + "\n").encode()
    start = time.perf_counter()
    if kind == "rnnkit":
        from rnnkit.ngram import NgramCounts

        counts = NgramCounts(order).update(text)
        seconds = time.perf_counter() - start
        sizes = [counts.size(n) for n in range(1, order + 1)]
        store = counts._store.memory_bytes()
        digest = [counts.total(n) for n in range(1, order + 1)]
    else:
        from rnnkit.reference import ngram as ref

        sentences = (line.split() for line in text.decode().splitlines())
        counters = ref.count_ngrams(sentences, order)
        seconds = time.perf_counter() - start
        sizes = [len(c) for c in counters]
        store = 0
        digest = [sum(c.values()) for c in counters]
    tokens_counted = sum(len(line.split()) for line in text.decode().splitlines())
    return {
        "seconds": seconds,
        "sizes": sizes,
        "totals": digest,
        "peak_mib": peak_rss_mib(),
        "store_bytes": store,
        "tokens": tokens_counted,
    }


def run(kind: str, corpus: Path, order: int, tokens: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(corpus), str(order), str(tokens)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/zipf20m.txt"))
    parser.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--reps", type=int, default=3, help="fresh processes per figure")
    parser.add_argument("--peer-tokens", type=int, default=1_000_000)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, corpus, order, tokens = args.worker
        print(json.dumps(worker(kind, corpus, int(order), int(tokens))))
        return
    zipf_corpus(args.corpus)
    print(f"corpus {args.corpus}, median of {args.reps} fresh processes per figure")
    print(
        "| what | order | tokens | seconds | M tokens/s | distinct n-grams per order "
        "| peak RSS MiB | store bytes/n-gram |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for order in args.orders:
        for kind, tokens in (
            ("rnnkit", 0),
            ("rnnkit", args.peer_tokens),
            ("Counter", args.peer_tokens),
        ):
            results = [run(kind, args.corpus, order, tokens) for _ in range(args.reps)]
            results.sort(key=lambda r: r["seconds"])
            r = results[len(results) // 2]
            assert all(x["totals"] == r["totals"] for x in results)
            ngrams = sum(r["sizes"])
            per = f"{r['store_bytes'] / ngrams:.1f}" if r["store_bytes"] else "-"
            sizes = ", ".join(f"{s:,}" for s in r["sizes"])
            print(
                f"| {kind} | {order} | {r['tokens']:,} | {r['seconds']:.2f} | "
                f"{r['tokens'] / r['seconds'] / 1e6:.2f} | {sizes} | "
                f"{r['peak_mib']:.0f} | {per} |"
            )
            if kind == "Counter":
                mine = run("rnnkit", args.corpus, order, tokens)
                if mine["sizes"] != r["sizes"] or mine["totals"] != r["totals"]:
                    raise SystemExit("rnnkit and Counter disagree")


if __name__ == "__main__":
    main()
