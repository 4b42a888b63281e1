"""The n-gram model from many Python threads at once (its C++ scoring releases the GIL)
while another thread counts into a separate store: every result equals the serial one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from rnnkit.ngram import NgramCounts, estimate


def corpus(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(0, 40, rng.integers(1, 12))) for _ in range(n)]


def test_queries_from_eight_threads_while_another_counts() -> None:
    model = estimate(NgramCounts(3).update(corpus(0, 3000)), "witten_bell")
    queries = corpus(1, 400)
    ids = np.concatenate([model.vocabulary.encode(q) for q in queries]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(q.split()) for q in queries])]).astype(np.int64)

    def run() -> tuple[object, ...]:
        return (
            model.score_batch(ids, offsets).tobytes(),
            [model.score(q) for q in queries[:50]],
            [model.full_scores(q) for q in queries[:20]],
            model.next_word_distribution("w1 w2", top_k=5),
        )

    expected = run()
    stop = threading.Event()
    counted: list[int] = []

    def count_elsewhere() -> None:
        while not stop.is_set():
            counted.append(NgramCounts(4).update(corpus(len(counted) + 2, 2000)).size(4))

    counter = threading.Thread(target=count_elsewhere)
    counter.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: run(), range(32)))
    finally:
        stop.set()
        counter.join()
    assert all(r == expected for r in results)
    assert counted  # the other store was being filled meanwhile
