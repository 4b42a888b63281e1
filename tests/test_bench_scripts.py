"""The side-by-side benchmark scripts check what they time: their agreement checks catch a
wrong gradient or a NaN, and they time the same work on both sides (tiny shapes only)."""

from __future__ import annotations

import argparse
import math
import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rnnkit.bench import _common

torch = pytest.importorskip("torch")
BENCH = Path(__file__).resolve().parents[1] / "bench"


def _script(name: str) -> dict[str, Any]:
    return runpy.run_path(str(BENCH / name))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_agreement_check_covers_the_bias_gradients(
    cell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _common.make_problem(torch, cell, (5, 3, 4, 6), seed=0)
    errors = _common.check_agreement(torch, p)
    assert {"dx", "dw_ih", "dw_hh", "db_ih", "db_hh"} <= set(errors)

    right = _common.rnnkit_backward

    def wrong_bias(p: Any, cache: Any) -> Any:
        dx, dw_ih, dw_hh, db_ih, db_hh = right(p, cache)
        return dx, dw_ih, dw_hh, db_ih, db_hh * 1.01

    monkeypatch.setattr(_common, "rnnkit_backward", wrong_bias)
    with pytest.raises(SystemExit, match="db_hh"):
        _common.check_agreement(torch, p)


def test_cell_steps_error_catches_nan_and_times_the_same_backward() -> None:
    script = _script("cell_steps.py")
    err = script["max_rel_err"]
    assert err(np.array([np.nan, 1.0]), np.array([1.0, 1.0])) == math.inf
    assert err(np.array([1.0]), np.array([1.0, 1.0])) == math.inf
    assert err(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    args = argparse.Namespace(reps=2, max_reps=2, min_time=0.0, seed=0, torch_adapter=False)
    for cell in ("lstm", "gru", "rnn"):
        row = script["run_case"](torch, (cell, (2, 4, 3)), args)
        assert row[0] == cell.upper() and float(row[-1]) < 1e-5


def test_torch_packed_error_catches_nan_and_checks_both_passes() -> None:
    script = _script("torch_packed.py")
    err = script["max_rel_err"]
    assert err(torch.tensor([float("nan"), 1.0]), torch.tensor([1.0, 1.0])) == math.inf
    assert err(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) == 0.0
    args = argparse.Namespace(reps=2, max_reps=2, min_time=0.0, seed=0, short=2)
    row = script["run_case"](torch, ("gru", 1, True, (6, 3, 4, 5), "uniform"), args)
    assert row[0] == "GRU 1L bidir" and float(row[-1]) < 1e-5


def test_nltk_compat_takes_turns() -> None:
    timed = _script("nltk_compat.py")["timed"]
    calls: list[str] = []

    def run(name: str) -> Any:
        calls.append(name)
        return name

    got = timed({"nltk": (lambda: run("nltk"), 1), "rnnkit": (lambda: run("rnnkit"), 3)})
    assert calls == ["nltk", "rnnkit", "rnnkit", "rnnkit"]
    assert got["nltk"][1] == "nltk" and got["rnnkit"][1] == "rnnkit"
    calls.clear()
    timed({"nltk": (lambda: run("nltk"), 2), "rnnkit": (lambda: run("rnnkit"), 2)})
    assert calls == ["nltk", "rnnkit", "nltk", "rnnkit"]
