"""CI's proof that the optional CUDA build compiles and links, on a machine without a GPU.

The default build (the one every other test runs) is CPU-only. This test configures the
project with ``RNNKIT_CUDA=ON`` (warnings as errors, the default GPU architectures), builds
the extension with nvcc, and imports it in a child process: the CUDA build must load where
there is no GPU and no driver, report the backend as built, see no device, and refuse device
arrays with a clear error. The kernels themselves run in test_cuda_gpu.py, on a GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cuda_extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not installed here: the CUDA build cannot be compiled")
    pybind11 = pytest.importorskip("pybind11")
    build = tmp_path_factory.mktemp("cuda-build")
    configure = [
        "cmake",
        "-S",
        str(ROOT),
        "-B",
        str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DRNNKIT_CUDA=ON",
        "-DRNNKIT_WERROR=ON",
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
    ]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    for command in (configure, ["cmake", "--build", str(build), "--target", "_core", "-j", "2"]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    (extension,) = build.glob("_core*.so")
    return extension


IMPORT_CHECK = r"""
import sys
# Import the package copy next to this CUDA build, not the installed rnnkit (an editable
# install's finder would otherwise take precedence over sys.path).
sys.meta_path = [f for f in sys.meta_path if "rnnkit" not in repr(f)]
sys.path.insert(0, sys.argv[1])
import numpy as np
import rnnkit
from rnnkit import _core

assert rnnkit.__file__.startswith(sys.argv[1]), rnnkit.__file__
assert rnnkit.has_cuda() and _core._cuda.name == "cuda"
count = rnnkit.cuda.device_count()
assert rnnkit.cuda_available() == (count > 0)
print("devices", count)

class DeviceArray:  # host memory posing as device memory: refused before any kernel runs
    def __init__(self, a):
        self.__cuda_array_interface__ = {"shape": a.shape, "typestr": a.dtype.str,
                                         "data": (a.ctypes.data, False), "version": 3}
if count == 0:
    x = DeviceArray(np.zeros((2, 1, 3), np.float32))
    w = DeviceArray(np.zeros((4, 3), np.float32))
    try:
        rnnkit.rnn_forward(x, None, w, w)
    except RuntimeError as e:
        assert "needs a CUDA device" in str(e), e
    else:
        raise AssertionError("a device array ran without a device")
# The CPU kernels are unchanged in this build.
out = rnnkit.gru_forward(np.ones((2, 1, 3)), None, np.ones((6, 3)), np.ones((6, 2)))
assert out.y.shape == (2, 1, 2)
print("ok")
"""


def test_cuda_build_compiles_links_and_imports_without_a_gpu(
    cuda_extension: Path, tmp_path: Path
) -> None:
    package = tmp_path / "rnnkit"
    shutil.copytree(ROOT / "python" / "rnnkit", package)
    shutil.copy2(cuda_extension, package / cuda_extension.name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
