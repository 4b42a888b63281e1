"""Runs one fuzz target under atheris: ``python fuzz/run.py NAME [libFuzzer options] [corpus
directories]``, e.g. ``python fuzz/run.py arpa -max_total_time=600 corpus/arpa``.

``python fuzz/run.py NAME --seeds DIR`` writes the target's seed corpus (valid files) into DIR.
rnnkit's Python modules are instrumented for coverage; the C++ readers behind them are not
(that needs a clang build with ``-fsanitize=fuzzer-no-link``), so seeds that are valid files
and resealed checksums (see ``targets.py``) are what carries the mutations into them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnnkit.lm
import rnnkit.ngram  # noqa: F401
import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(targets.TARGETS)}}} [libFuzzer options]")
    name = sys.argv[1]
    if sys.argv[2:3] == ["--seeds"]:
        for path in targets.make_seeds(name, sys.argv[3]):
            print(path)
        return
    # Every Python function loaded so far (rnnkit's and NumPy's), whatever loader imported
    # it (an editable install's loader defeats atheris.instrument_imports); only to fuzz:
    # instrumented, the seeding run's interpreter shutdown printed a traceback from logging.
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *sys.argv[2:]], targets.TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
