#!/usr/bin/env python3
"""The kernels' side-by-side benchmark against torch.nn and ONNX Runtime (issue 4): this script
runs :mod:`rnnkit.bench.compare`, which ``rnnkit bench`` runs too (``--help`` for its options).

    python bench/compare.py --markdown BENCH.md --png bench.png
"""

from __future__ import annotations

from rnnkit.bench.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
