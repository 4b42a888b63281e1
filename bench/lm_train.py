#!/usr/bin/env python3
"""Training throughput of a recurrent language model: rnnkit.lm.RNNLanguageModel against the
same model written with torch.nn (issue 6).

The model: character-level, embedding 128, a 2-layer LSTM or GRU of 256 units, a linear
decoder, softmax cross-entropy, SGD (lr 1.0) with the gradients' norm clipped at 0.25;
batches of 32 windows of 35 characters by sequential partitioning (the state carried across
windows, truncated BPTT). Corpus: Python's documentation (``pydoc_data.topics``, every
Python has it), 90% training, 10% validation. Both libraries start from the same weights
(rnnkit's, copied into torch), see the same batches, run the same number of steps with the
same number of threads, alternating in blocks, after checking that the first step's loss and
gradient norm agree; the script reports tokens per second (median of the blocks), their
ratio, and the validation perplexity each reaches (same model, same maths: they must agree
within float32 noise; a warning says when they do not).

    python bench/lm_train.py --steps 200 --cells lstm,gru
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from typing import Any

import numpy as np


def corpus() -> str:
    import pydoc_data.topics as topics

    return "\n".join(topics.topics.values())


def torch_model(torch: Any, m: Any) -> tuple[Any, ...]:
    c = m.config
    emb = torch.nn.Embedding(c["vocab_size"], c["embed"])
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[c["cell"]](
        c["embed"], c["hidden"], c["layers"]
    )
    dec = torch.nn.Linear(c["hidden"], c["vocab_size"])
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(m.embedding.params["weight"]))
        rnn.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in m.rnn.params.items()})
        dec.weight.copy_(torch.from_numpy(m.decoder.params["weight"]))
        dec.bias.copy_(torch.from_numpy(m.decoder.params["bias"]))
    return emb, rnn, dec


def run_cell(
    torch: Any, cell: str, vocab_size: int, train: Any, valid: Any, a: argparse.Namespace
) -> tuple[str, float, float, float, float, float]:
    """Both libraries on one cell: (name, rnnkit tok/s, torch tok/s, ratio, both perplexities)."""
    from rnnkit.data import sequential_batches
    from rnnkit.lm import SGD, RNNLanguageModel, clip_grad_norm

    m = RNNLanguageModel(vocab_size, 128, 256, 2, cell, seed=0)  # type: ignore[arg-type]
    emb, rnn, dec = torch_model(torch, m)
    tparams = [*emb.parameters(), *rnn.parameters(), *dec.parameters()]
    topt = torch.optim.SGD(tparams, lr=a.lr)
    opt = SGD(m.parameters(), lr=a.lr)
    batches = list(sequential_batches(train, 32, 35))
    state: dict[str, Any] = {"rnnkit": None, "torch": None}

    def rnnkit_step(k: int) -> tuple[float, float]:
        b = batches[k % len(batches)]
        if not b.carry_state:
            state["rnnkit"] = None
        m.zero_grad()
        loss, state["rnnkit"] = m.loss(b.inputs, b.targets, state["rnnkit"])
        norm = clip_grad_norm([g for _, g in opt.pairs], 0.25)
        opt.step()
        return loss, norm

    def torch_step(k: int) -> tuple[Any, Any]:
        b = batches[k % len(batches)]
        s = None if not b.carry_state else state["torch"]
        topt.zero_grad()
        y, s = rnn(emb(torch.from_numpy(b.inputs)), s)
        logits = dec(y)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.from_numpy(b.targets).reshape(-1)
        )
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(tparams, 0.25)
        topt.step()
        state["torch"] = tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()
        return loss, norm  # tensors: reading them (.item()) would cost a sync per step

    rates: dict[str, list[float]] = {"rnnkit": [], "torch": []}
    m.train()
    # Warm-up, outside the timed blocks, and the agreement check before anything is timed:
    # the first batch's loss and gradient norm (before clipping) must be the same in both.
    mine = rnnkit_step(0)
    theirs = [float(v) for v in torch_step(0)]
    for what, x, y in zip(("loss", "gradient norm"), mine, theirs, strict=True):
        if not abs(x - y) <= 1e-4 * abs(y):
            sys.exit(
                f"ABORT: {cell}: rnnkit and torch disagree on the first step's {what}: {x} vs {y}"
            )
    print(
        f"{cell}: first step agrees: loss {mine[0]:.6f} / {theirs[0]:.6f}, "
        f"gradient norm {mine[1]:.6f} / {theirs[1]:.6f}",
        flush=True,
    )
    done = {"rnnkit": 1, "torch": 1}
    while done["rnnkit"] < a.steps:
        for name, step in (("rnnkit", rnnkit_step), ("torch", torch_step)):
            n = min(a.block, a.steps - done[name])
            # the tokens of the block's batches (the last window of the stream is shorter)
            tokens = sum(
                batches[k % len(batches)].inputs.size for k in range(done[name], done[name] + n)
            )
            t0 = time.perf_counter()
            for _ in range(n):
                step(done[name])
                done[name] += 1
            rates[name].append(tokens / (time.perf_counter() - t0))
    # validation perplexity of both after the same steps
    m.eval()
    ppl = m.evaluate(valid)
    with torch.no_grad():
        x = torch.from_numpy(np.concatenate([[2], valid[:-1]]))[:, None]
        y, _ = rnn(emb(x))
        nll = torch.nn.functional.cross_entropy(dec(y)[:, 0], torch.from_numpy(valid))
    tppl = math.exp(nll.item())
    if not abs(ppl - tppl) <= 1e-3 * tppl:
        print(f"WARNING: {cell}: validation perplexities differ: {ppl:.4f} vs {tppl:.4f}")
    r, t = statistics.median(rates["rnnkit"]), statistics.median(rates["torch"])
    print(
        f"{cell}: rnnkit {r:,.0f} tok/s, torch {t:,.0f} tok/s ({r / t:.2f}x); "
        f"valid ppl {ppl:.3f} / {tppl:.3f}",
        flush=True,
    )
    return cell.upper(), r, t, r / t, ppl, tppl


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per library")
    parser.add_argument("--block", type=int, default=20, help="steps per timed block")
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1.0)
    a = parser.parse_args()

    import rnnkit
    import torch
    from rnnkit.data import split
    from rnnkit.text import CharTokenizer, build_vocabulary, encode

    threads = a.threads or rnnkit.get_num_threads()
    torch.set_num_threads(threads)
    rnnkit.set_num_threads(threads)
    tok = CharTokenizer()
    text = corpus()
    vocab = build_vocabulary(text, tok)
    ids = encode(text, vocab, tok).astype(np.int64)
    train, valid, _ = split(ids, valid=0.1, test=0.0)
    valid = valid[:20000]
    print(
        f"corpus: {ids.size:,} characters, vocabulary {len(vocab)}; threads {threads}; "
        f"torch {torch.__version__}, rnnkit {rnnkit.__version__}; {a.steps} steps of "
        "batch 32 x seq_len 35"
    )
    rows = [run_cell(torch, cell, len(vocab), train, valid, a) for cell in a.cells.split(",")]
    print()
    print(
        "| model | rnnkit tokens/s | torch tokens/s | rnnkit / torch | rnnkit valid ppl "
        "| torch valid ppl |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for cell, r, t, ratio, p1, p2 in rows:
        print(f"| 2-layer {cell} LM | {r:,.0f} | {t:,.0f} | {ratio:.2f}x | {p1:.3f} | {p2:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
