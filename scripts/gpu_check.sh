#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in one call: build rnnkit with RNNKIT_CUDA=ON, run the GPU
# tests, then the benchmark against cuDNN. Logs and the table go to $OUT (default gpu-out/).
#
# The machine needs nvcc, a CUDA build of torch, pytest (and pytest-xdist, pytest-timeout),
# scikit-build-core and pybind11. The BLAS wheel (scipy-openblas32, this project's exact pin)
# is installed from .whl/ when it is there, for machines without a package index:
#   pip download --no-deps --only-binary=:all: -d .whl scipy-openblas32==<the pin>
#
# Environment: CUDA_ARCH (default 90: Hopper only, to build quickly), TEST_SECONDS and
# BENCH_SECONDS (time limits of the two phases), BENCH_ARGS (for bench/cuda_compare.py).
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
site=${SITE:-/tmp/rnnkit-site}
started=$SECONDS

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, numpy; print('torch', torch.__version__, 'cudnn', \
torch.backends.cudnn.version(), 'numpy', numpy.__version__)" | tee -a "$OUT/gpu.txt"

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl || exit 1
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if ! RNNKIT_CUDA=ON RNNKIT_WERROR=ON CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" python3 -m pip install \
    --no-index --no-deps --no-build-isolation --target "$site" \
    -C cmake.define.CMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" . >"$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    exit 1
fi
echo "built in $((SECONDS - started)) s"
python3 -c "import rnnkit; assert rnnkit.cuda_available(), 'no CUDA device seen'; \
print('rnnkit', rnnkit.__file__)" || exit 1

timeout "${TEST_SECONDS:-300}" python3 -m pytest tests/test_cuda_gpu.py -q -p no:cacheprovider -p no:benchmark \
    -n "${TEST_WORKERS:-8}" --timeout 240 >"$OUT/tests.log" 2>&1
tests_status=$?
grep -E "passed|failed|error" "$OUT/tests.log" | tail -5
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -40
echo "tests exit $tests_status at $((SECONDS - started)) s"

# shellcheck disable=SC2086
timeout "${BENCH_SECONDS:-200}" python3 bench/cuda_compare.py ${BENCH_ARGS:-} \
    --markdown "$OUT/cuda.md" >"$OUT/bench.log" 2>&1
echo "bench exit $? at $((SECONDS - started)) s"
cat "$OUT/cuda.md" 2>/dev/null || tail -60 "$OUT/bench.log"
exit "$tests_status"
