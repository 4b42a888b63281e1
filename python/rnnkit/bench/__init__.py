"""The kernels' side-by-side benchmark against torch.nn and ONNX Runtime (issue 4), runnable
from an installed rnnkit: ``rnnkit bench [options]`` or ``python -m rnnkit.bench.compare``
(``bench/compare.py`` in a checkout). It needs the ``bench`` extra (torch, onnx, onnxruntime,
matplotlib)."""
