#!/usr/bin/env bash
# The long fuzz run of issue 7: every target of fuzz/targets.py under atheris for SECONDS
# each (default 3600), with a corpus kept between runs in fuzz/corpus/NAME (seeded with valid
# files, plus every input in fuzz/regressions/NAME). A finding (an uncaught exception, a
# crash, a hang over 60 s, an allocation over 2 GiB) is written to fuzz/findings/ and makes
# the script exit non-zero; add it to fuzz/regressions/NAME once fixed. Needs the test extra
# (`pip install ".[test]"`, which brings atheris). The suite runs a short version of each
# target (tests/test_fuzz.py).
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    mapfile -t names < <(python -c "import sys; sys.path.insert(0, 'fuzz'); import targets; print('\n'.join(targets.TARGETS))")
fi
mkdir -p fuzz/findings
status=0
for name in "${names[@]}"; do
    corpus="fuzz/corpus/$name"
    mkdir -p "$corpus"
    python fuzz/run.py "$name" --seeds "$corpus" >/dev/null
    echo "== $name: ${seconds} s"
    log="fuzz/findings/$name.log"
    python fuzz/run.py "$name" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/findings/$name-" \
        "$corpus" "fuzz/regressions/$name" >"$log" 2>&1
    code=$?
    grep -E "^(Done|stat::number_of_executed_units|SUMMARY)|Uncaught" "$log"
    if [ $code -ne 0 ]; then
        echo "== $name: FINDING, status $code (the log: $log)"
        status=1
    fi
done
exit $status
