"""Data-parallel training through torch.distributed: rnnkit.torch modules under
``DistributedDataParallel`` with the gloo backend.

The example script ``examples/ddp_train.py`` (a character LSTM language model whose LSTM is
``rnnkit.torch.LSTM``) runs under ``torchrun`` with 2 processes on this machine, in float64,
and once alone on the whole batch. After a few SGD steps the two ranks must hold the very same
parameters (DDP's averaged gradients give every rank the same step), and those must equal the
single process's (the mean of the ranks' mean losses is the mean loss of the whole batch).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ddp_train.py"
ARGS = [
    "--steps",
    "4",
    "--batch",
    "8",
    "--seq-len",
    "12",
    "--hidden",
    "24",
    "--embed",
    "16",
    "--double",
]


def _run(command: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ddp_ranks_agree_with_each_other_and_with_one_process(tmp_path: Path) -> None:
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(EXAMPLE),
            *ARGS,
            "--dump",
            str(ddp),
        ]
    )
    _run([sys.executable, str(EXAMPLE), *ARGS, "--dump", str(single)])
    rank0 = torch.load(ddp / "rank-0.pt")
    rank1 = torch.load(ddp / "rank-1.pt")
    alone = torch.load(single / "rank-0.pt")
    assert rank0.keys() == alone.keys()
    assert any(k.startswith("lstm.weight_hh") for k in rank0)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between the ranks"
        torch.testing.assert_close(rank0[name], alone[name], rtol=1e-10, atol=1e-12, msg=name)
    # The steps moved the weights: the comparison is not between untouched initial values.
    torch.manual_seed(0)
    initial = torch.nn.Embedding(rank0["embed.weight"].shape[0], 16).weight.double()
    assert not torch.allclose(initial, rank0["embed.weight"])


def test_the_example_refuses_a_batch_it_cannot_split(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(EXAMPLE),
        *ARGS[:2],
        "--batch",
        "3",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode != 0
    assert "must be a multiple of the 2 processes" in done.stdout + done.stderr


@pytest.fixture(autouse=True)
def _gloo_available() -> None:
    assert torch.distributed.is_available() and torch.distributed.is_gloo_available()
