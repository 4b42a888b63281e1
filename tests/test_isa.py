"""Every instruction-set variant of the kernels is correct, not only the one this CPU picks.

The time loops are compiled for the x86-64 baseline, AVX2+FMA and AVX-512 and chosen at run
time (``rnnkit.cpu_isa()``); the environment variable ``RNNKIT_ISA`` caps the choice. Each
variant the CPU can run reruns the kernel-against-reference tests in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import rnnkit

ORDER = ("baseline", "avx2", "avx512")
HERE = Path(__file__).parent


def test_cpu_isa_is_known() -> None:
    assert rnnkit.cpu_isa() in ORDER


@pytest.mark.parametrize("isa", ORDER)
def test_variant_matches_reference(isa: str) -> None:
    if ORDER.index(isa) > ORDER.index(rnnkit.cpu_isa()):
        pytest.skip(f"this CPU cannot run the {isa} kernels (it runs {rnnkit.cpu_isa()})")
    env = {**os.environ, "RNNKIT_ISA": isa}
    check = [sys.executable, "-c", "import rnnkit; print(rnnkit.cpu_isa())"]
    assert subprocess.run(check, env=env, capture_output=True, text=True).stdout.strip() == isa
    tests = [
        str(HERE / "test_kernel_variants.py") + "::test_kernel_matches_reference",
        str(HERE / "test_kernels.py"),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        env=env,
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("value", ["bogus", "AVX2", ""])
def test_unknown_isa_value_warns_and_is_ignored(value: str) -> None:
    env = {**os.environ, "RNNKIT_ISA": value}
    check = [sys.executable, "-c", "import rnnkit; print(rnnkit.cpu_isa())"]
    result = subprocess.run(check, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "RuntimeWarning" in result.stderr and "RNNKIT_ISA must be one of" in result.stderr
    assert repr(value) in result.stderr
    with_none = {k: v for k, v in os.environ.items() if k != "RNNKIT_ISA"}
    best = subprocess.run(check, env=with_none, capture_output=True, text=True).stdout
    assert result.stdout == best  # ignored: the same choice as without the variable
