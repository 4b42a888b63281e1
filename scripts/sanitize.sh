#!/usr/bin/env bash
# Builds rnnkit with AddressSanitizer and UndefinedBehaviorSanitizer in a fresh virtual
# environment and runs the tests that need no peer library (torch, kenlm, onnx) under them:
# any report stops the run with a non-zero status (issue 7). About 10 minutes on 2 cores.
#
#   bash scripts/sanitize.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
python3 -m venv "$workdir/venv"
# shellcheck disable=SC1091
source "$workdir/venv/bin/activate"
pip install -q numpy pytest hypothesis nltk==3.10.4 tqdm==4.70.1 \
    scikit-build-core pybind11 scipy-openblas32==0.3.34.481.3
# Its own build directory: the default (pyproject's build/{wheel_tag}) is shared with a
# developer's editable install, whose next rebuild would otherwise pick up this configuration.
RNNKIT_SANITIZE=ON pip install -q --no-build-isolation -C build-dir="$workdir/build" .

# Python is not instrumented: load the sanitizer runtimes first. Python's own allocations
# look like leaks to LeakSanitizer, so leak detection is off (tests/test_leaks.py measures
# leaks instead).
export LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
module=$(python -c "import rnnkit._core as c; print(c.__file__)")
if ! ldd "$module" | grep -q libasan; then
    echo "sanitize.sh: $module is not instrumented (no libasan)" >&2
    exit 1
fi
# A deliberate heap overflow must be caught, or the run would prove nothing.
if python -c "import rnnkit._core as c; c._sanitizer_self_test()" 2> "$workdir/self-test.txt" ||
    ! grep -q "heap-buffer-overflow" "$workdir/self-test.txt"; then
    echo "sanitize.sh: AddressSanitizer did not report a deliberate overflow" >&2
    exit 1
fi
echo "sanitize.sh: instrumented build; a deliberate heap overflow was reported"
tests=(
    tests/test_kernels.py tests/test_kernel_variants.py tests/test_determinism.py
    tests/test_gradcheck.py tests/test_memory_pool.py tests/bad_arguments_cases.py
    tests/test_special_values.py tests/test_sizes.py tests/test_numerics.py tests/test_fork.py
    tests/test_nn.py tests/test_side_by_side.py tests/test_ngram_counts.py
    tests/test_ngram_threads.py tests/test_nltk_compat.py tests/test_text_data.py
    tests/test_lm_tasks.py tests/test_ngram_build.py tests/bad_arguments_api_cases.py
    tests/test_fuzz.py tests/test_files.py tests/test_region_failure.py
)
python -m pytest -q -p no:cacheprovider "${tests[@]}" "$@"
