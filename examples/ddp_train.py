#!/usr/bin/env python3
"""Data-parallel training of an LSTM language model whose recurrent layers are rnnkit's, with
``torch.nn.parallel.DistributedDataParallel`` (DDP) and the gloo backend (CPUs).

Each process trains on its share of every global batch (rows ``rank::world`` would do as well;
here consecutive slices); DDP averages the gradients across processes after each backward, so
every process takes the same step and the parameters stay identical everywhere: the same
parameters as one process training on the whole batch.

One machine, 2 processes::

    torchrun --nproc_per_node=2 examples/ddp_train.py --steps 100

Several machines (run on each, ``--node_rank`` 0 on the machine named by ``--master_addr``)::

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=2 \\
             --master_addr=10.0.0.1 --master_port=29500 examples/ddp_train.py --text corpus.txt

Without torchrun the script trains in one process on the whole batch (the reference the test
``tests/test_ddp.py`` compares with). ``--dump DIR`` writes each rank's final parameters to
``DIR/rank-<r>.pt``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import rnnkit.torch as rt
import torch
import torch.distributed as dist
from rnnkit.text import CharTokenizer, build_vocabulary, encode
from torch import nn


class CharLSTM(nn.Module):
    """Embedding -> rnnkit LSTM layers -> linear decoder over the characters."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = rt.LSTM(embed, hidden, num_layers=layers)  # rnnkit's kernels
        self.decode = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [T, B] ids -> logits [T, B, V]
        y, _ = self.lstm(self.embed(x))
        return self.decode(y)


def corpus_ids(path: str | None) -> tuple[np.ndarray, int]:
    if path is None:
        import pydoc_data.topics

        text = "\n".join(pydoc_data.topics.topics.values())[:400_000]
    else:
        text = Path(path).read_text(encoding="utf-8")
    tokenizer = CharTokenizer()
    vocab = build_vocabulary(text, tokenizer)
    return encode(text, vocab, tokenizer).astype(np.int64), len(vocab)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=None, help="a UTF-8 file (default: Python's docs)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32, help="global batch (all processes)")
    parser.add_argument("--seq-len", type=int, default=35)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--double", action="store_true", help="float64 (exact comparisons)")
    parser.add_argument("--dump", default=None, help="write each rank's parameters here")
    args = parser.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} must be a multiple of the {world} processes")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    ids, vocab_size = corpus_ids(args.text)
    torch.manual_seed(args.seed)  # the same initial weights in every process
    model = CharLSTM(vocab_size, args.embed, args.hidden, args.layers)
    if args.double:
        model = model.double()
    trained: nn.Module = nn.parallel.DistributedDataParallel(model) if distributed else model
    optimizer = torch.optim.SGD(trained.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    batch_rng = np.random.default_rng(args.seed)  # the same global batches everywhere
    share = args.batch // world
    start = time.perf_counter()
    for step in range(args.steps):
        offsets = batch_rng.integers(0, len(ids) - args.seq_len - 1, args.batch)
        mine = offsets[rank * share : (rank + 1) * share]  # this process's rows
        window = np.stack([ids[o : o + args.seq_len + 1] for o in mine], axis=1)  # [T+1, B]
        x = torch.from_numpy(window[:-1])
        y = torch.from_numpy(window[1:])
        logits = trained(x)
        loss = loss_fn(logits.reshape(-1, vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()  # DDP averages the gradients of all processes here
        optimizer.step()
        if rank == 0 and (step % 10 == 0 or step == args.steps - 1):
            print(f"step {step:4d}  loss {loss.item():.4f}  (rank 0's rows)", flush=True)
    if rank == 0:
        tokens = args.steps * args.batch * args.seq_len
        seconds = time.perf_counter() - start
        print(f"{world} process(es): {tokens / seconds:,.0f} tokens/s", flush=True)
    if args.dump is not None:
        Path(args.dump).mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), Path(args.dump) / f"rank-{rank}.pt")
    if distributed:
        # Every rank must reach the teardown before any rank starts it: gloo's destroy, when a
        # peer has already closed its sockets, sometimes aborts the process ("terminate called
        # without an active exception"). Here: 3 aborts in 60 runs without this barrier (with
        # torch.nn.LSTM in place of rnnkit's too), none in 110 runs with it.
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
