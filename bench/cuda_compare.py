#!/usr/bin/env python3
"""rnnkit's CUDA backend against cuDNN (issue 8): runs :mod:`rnnkit.bench.cuda` (``--help``).

python bench/cuda_compare.py --markdown cuda.md
"""

from __future__ import annotations

from rnnkit.bench.cuda import main

if __name__ == "__main__":
    raise SystemExit(main())
