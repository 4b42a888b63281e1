"""The n-gram model from many Python threads at once (its C++ scoring releases the GIL)
while another thread counts into a separate store: every result equals the serial one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
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


def held_elsewhere(obj: object, change: bool) -> tuple[threading.Event, threading.Thread]:
    """A thread that claims ``obj`` (a store's or a vocabulary's C++ object) and holds the
    claim until the returned event is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with obj.claim(change=change):  # type: ignore[attr-defined]
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    return release, thread


def test_a_change_overlapping_another_threads_use_is_refused_and_changes_nothing() -> None:
    """The count store's and the vocabulary's hash tables rehash as they grow: a change that
    overlaps any other thread's use of them raises RuntimeError at once (a wait could
    deadlock), before changing anything; reads overlap freely."""
    counts = NgramCounts(3).update(corpus(0, 200))
    before = counts.to_bytes()
    for obj, change, message in [
        (counts._store, True, "n-gram count store is in use by another thread"),
        (counts._store, False, "n-gram count store is in use by another thread"),
        (counts.vocabulary._core, False, "vocabulary is in use by another thread"),
    ]:
        release, thread = held_elsewhere(obj, change)
        try:
            with pytest.raises(RuntimeError, match=message):
                counts.update(corpus(1, 50))
            with pytest.raises(RuntimeError, match=message):
                counts.merge(NgramCounts(3).update(corpus(2, 50)))
            if change:
                with pytest.raises(RuntimeError, match="store is being changed by another"):
                    counts.count("w1 w2")
            else:
                assert counts.count("w1 w2") == NgramCounts.from_bytes(before).count("w1 w2")
        finally:
            release.set()
            thread.join()
        assert counts.to_bytes() == before  # all or nothing
    # once the other thread is done: as if it had never been there
    assert counts.update(corpus(1, 50)).to_bytes() == (
        NgramCounts.from_bytes(before).update(corpus(1, 50)).to_bytes()
    )
    # a thread's own claim does not block it (update claims, then calls that claim again)
    with counts._store.claim(change=True), counts.vocabulary._core.claim(change=True):
        counts.update(corpus(3, 10))
        assert counts.count("w1") > 0


def test_updates_of_one_store_from_several_threads_are_each_all_or_nothing() -> None:
    """Threads updating, merging into and reading one store at once: no crash (the tables were
    read while being rehashed), each update either counted whole or refused with nothing
    counted, and the store ends as the serial count of the updates that went through."""
    counts = NgramCounts(3)
    texts = ["\n".join(corpus(seed, 300)) for seed in range(24)]
    done: list[int] = []
    refused: list[int] = []
    stop = threading.Event()

    def update(first: int) -> None:
        for k in range(first, len(texts), 3):
            try:
                counts.update(texts[k])
                done.append(k)
            except RuntimeError as error:
                assert "another thread" in str(error)
                refused.append(k)

    def read() -> None:
        while not stop.is_set():
            try:
                counts.to_bytes()
                counts.count("w1 w2")
                list(counts.items(2))
            except RuntimeError as error:
                assert "another thread" in str(error)

    writers = [threading.Thread(target=update, args=(k,)) for k in range(3)]
    reader = threading.Thread(target=read)
    for t in [*writers, reader]:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert sorted(done + refused) == list(range(len(texts)))
    serial = NgramCounts(3, counts.vocabulary)
    for k in sorted(done):
        serial.update(texts[k])
    for n in (1, 2, 3):
        assert dict(counts.items(n)) == dict(serial.items(n))
