"""``rnnkit demo``: the main job. On a text every Python has (its own documentation,
``pydoc_data.topics``; or ``--corpus FILE``), character level, it trains a 5-gram modified
Kneser-Ney model, a fixed-window neural model, and RNN, GRU and LSTM language models, each
for a bounded time, then prints a table of validation perplexity (all in the same convention:
every character and every line end predicted, natural-log perplexity), training speed and
size, and samples text from the best model. With matplotlib installed it also writes the
training curves (``--png``)."""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["Result", "run_demo"]


@dataclass
class Result:
    name: str
    valid_ppl: float
    tokens_per_s: float
    bytes: int
    seconds: float
    curve: list[tuple[int, float]]  # (tokens seen, training loss in nats)
    model: Any


def default_corpus() -> str:
    """Python's documentation topics (``pydoc_data.topics``), shipped with every Python."""
    import pydoc_data.topics as topics

    return "\n".join(topics.topics.values())


def _lines(text: str) -> list[str]:
    from .text import _lines as lines_of

    # (the tokenizers' lines: split at "\n" only, as the models read the text)
    return [line for line in lines_of(text) if line.strip()]


def run_demo(
    *,
    corpus: str | None = None,
    seconds: float = 30.0,
    seed: int = 0,
    png: Path | None = None,
    out: TextIO = sys.stdout,
    progress: bool = False,
    sample_length: int = 300,
) -> list[Result]:
    """Runs the demo (see the module docstring) and returns each model's result."""
    from .data import split
    from .lm import RNNLanguageModel, WindowLanguageModel
    from .ngram import NgramCounts, estimate
    from .text import CharTokenizer, build_vocabulary, decode, encode

    text = default_corpus() if corpus is None else corpus
    lines = _lines(text)
    if len(lines) < 20:
        raise ValueError(
            f"the corpus has {len(lines)} non-empty lines: the demo needs at least 20 (it keeps "
            "5% for validation)"
        )
    train_lines, valid_lines, _ = split(lines, valid=0.05, test=0.0, shuffle=True, seed=seed)
    train_text, valid_text = "\n".join(train_lines), "\n".join(valid_lines)
    tok = CharTokenizer()
    vocab = build_vocabulary(train_text, tok)
    if len(vocab) < 5:
        raise ValueError(f"the corpus has {len(vocab) - 3} distinct characters: too few to model")
    train_ids = encode(train_text, vocab, tok).astype(np.int64)
    valid_ids = encode(valid_text, vocab, tok).astype(np.int64)
    if valid_ids.size > 30000:  # at most 30,000 tokens, whole lines
        ends = np.flatnonzero(valid_ids[:30000] == vocab.EOS)
        valid_ids = valid_ids[: ends[-1] + 1] if ends.size else valid_ids[:30000]
    valid_text = decode(valid_ids, vocab, tok)
    print(
        f"corpus: {len(text):,} characters, {len(lines):,} lines; training {train_ids.size:,} "
        f"tokens, validation {valid_ids.size:,}; {len(vocab)} symbols (characters, <unk>, <s>, "
        f"</s>); {seconds:g} s per neural model",
        file=out,
        flush=True,
    )
    results: list[Result] = []

    # The n-gram model: the same tokens (characters and </s>), perplexity in the same base.
    t0 = time.perf_counter()
    counts = NgramCounts(5, vocab).update(tok.tokenize(train_text))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        ngram = estimate(counts, "mkn")
    for w in caught:
        print(f"note: {w.message}", file=out)
    seconds_ngram = time.perf_counter() - t0
    evaluation = ngram.evaluate(tok.tokenize(valid_text))
    results.append(
        Result(
            "5-gram modified Kneser-Ney",
            math.exp(-evaluation.log10_prob * math.log(10) / evaluation.tokens),
            train_ids.size / seconds_ngram,
            int(ngram._model.memory_bytes()),
            seconds_ngram,
            [],
            ngram,
        )
    )
    _report(results[-1], out)

    neural: list[tuple[str, Any, dict[str, Any]]] = [
        (
            "window neural LM (8 characters)",
            WindowLanguageModel(
                len(vocab),
                context=8,
                embed=32,
                hidden=512,
                vocabulary=vocab,
                tokenizer=tok,
                seed=seed,
            ),
            {"batch_size": 256, "lr": 2e-3, "batching": "random"},
        ),
    ]
    for cell in ("rnn", "gru", "lstm"):
        neural.append(
            (
                f"{cell.upper()} LM (2 x 256)",
                RNNLanguageModel(
                    len(vocab), 64, 256, 2, cell, vocabulary=vocab, tokenizer=tok, seed=seed
                ),  # type: ignore[arg-type]
                {"batch_size": 32, "seq_len": 64, "lr": 2e-3 if cell != "rnn" else 1e-3},
            )
        )
    for name, model, options in neural:
        curve: list[tuple[int, float]] = []
        tokens_per_batch = options["batch_size"] * options.get("seq_len", 1)
        bar = _bar(progress, name, seconds)

        def on_step(
            info: dict[str, float],
            curve: list[tuple[int, float]] = curve,
            bar: Any = bar,
            per_step: int = tokens_per_batch,
        ) -> None:
            curve.append((int(info["step"]) * per_step, info["loss"]))
            if bar is not None:
                bar.update()

        t0 = time.perf_counter()
        history = model.fit(
            train_ids,
            epochs=1000,
            optimizer="adam",
            clip=1.0,
            max_seconds=seconds,
            seed=seed,
            on_step=on_step,
            **options,
        )
        elapsed = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        tokens = sum(r["tokens_per_s"] * r["seconds"] for r in history)
        results.append(
            Result(
                name,
                model.evaluate(valid_ids),
                tokens / max(sum(r["seconds"] for r in history), 1e-9),
                model.num_parameters() * model.dtype.itemsize,
                elapsed,
                curve,
                model,
            )
        )
        _report(results[-1], out)

    print("", file=out)
    print(
        "| model | validation perplexity | training tokens/s | size | training time |",
        file=out,
    )
    print("|---|---:|---:|---:|---:|", file=out)
    for r in results:
        print(
            f"| {r.name} | {r.valid_ppl:.3f} | {r.tokens_per_s:,.0f} | {r.bytes / 2**20:.2f} MiB "
            f"| {r.seconds:.1f} s |",
            file=out,
        )
    best = min(results, key=lambda r: r.valid_ppl)
    print(f"\nsample from the best model ({best.name}, temperature 0.8):\n", file=out)
    if best is results[0]:  # the n-gram model: tokens, joined back into text
        sample = ngram.generate("", sample_length, temperature=0.8, seed=seed)
        lines = " ".join(sample).split("</s>")
        print("\n".join(tok.detokenize(line.split()) for line in lines), file=out)
    else:
        print(best.model.generate("", sample_length, temperature=0.8, seed=seed), file=out)
    if png is not None:
        _plot(results, png, out)
    return results


def _report(r: Result, out: TextIO) -> None:
    print(
        f"{r.name}: validation perplexity {r.valid_ppl:.3f}, {r.tokens_per_s:,.0f} training "
        f"tokens/s, {r.bytes / 2**20:.2f} MiB, {r.seconds:.1f} s",
        file=out,
        flush=True,
    )


def _bar(enabled: bool, name: str, seconds: float) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return None
    return tqdm(desc=name, unit=" steps", file=sys.stderr, leave=False)


def _plot(results: list[Result], png: Path, out: TextIO) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib is not installed: no {png})", file=out)
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    for r in results:
        if not r.curve:
            ax.axhline(r.valid_ppl, linestyle="--", color="gray", label=f"{r.name} (validation)")
            continue
        seen = np.array([c[0] for c in r.curve])
        loss = np.array([c[1] for c in r.curve])
        window = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(seen[window - 1 :], np.exp(smooth), label=r.name)
    ax.set_xlabel("training tokens seen")
    ax.set_ylabel("training perplexity (moving average)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("rnnkit demo: character-level language models")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    print(f"training curves written to {png}", file=out)
