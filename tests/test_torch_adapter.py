"""The PyTorch adapter ``rnnkit.torch``: drop-in ``torch.nn.LSTM/GRU/RNN`` running rnnkit's kernels.

Parity: a ``torch.nn`` module and an ``rnnkit.torch`` module loaded from its ``state_dict`` get
the same inputs; their outputs, and the gradients of a random linear loss with respect to the
input, ``h0``, ``c0`` and every parameter, must agree to 1e-10 (float64) or 1e-5 (float32) of
the largest magnitude of each compared tensor. Then ``torch.autograd.gradcheck`` in float64,
``from_torch``'s parameter sharing, the import isolation of ``rnnkit`` and the errors.
"""

from __future__ import annotations

import copy
import pickle
import re
import subprocess
import sys
import zlib
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import rnnkit.torch as rt  # noqa: E402 -- only once torch is known to be there
from helpers import torch_cell_step  # noqa: E402
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence  # noqa: E402

# torch.nn warns that its oneDNN path has no projections (the reference side, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
I, H, P, T = 5, 7, 4, 6  # noqa: E741 -- input, hidden, projection sizes; time steps

# Module configurations (the same constructor arguments for torch.nn and rnnkit.torch).
CONFIGS: dict[str, dict[str, Any]] = {
    "1layer": {},
    "2layers_bidir": {"num_layers": 2, "bidirectional": True},
    "batch_first_nobias": {"num_layers": 2, "batch_first": True, "bias": False},
    "bidir_batch_first": {"bidirectional": True, "batch_first": True},
    "proj": {"num_layers": 2, "bidirectional": True, "proj_size": P},  # LSTM only
    "proj_nobias_bf": {"proj_size": P, "bias": False, "batch_first": True},  # LSTM only
    "dropout_eval": {"num_layers": 2, "dropout": 0.5, "bidirectional": True},  # eval mode
}
# How the input is given: padded with h0 (and c0), padded without, packed (sorted lengths or
# not, with h0), unbatched (with h0).
MODES = ("padded", "padded_no_hx", "packed_sorted", "packed_unsorted", "unbatched")
LENGTHS = {"packed_sorted": [T, T - 1, 3, 1], "packed_unsorted": [3, T, 1, T - 2]}
B = 4


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """The problems here are tiny: one thread each for torch and rnnkit avoids two thread
    pools spinning against each other (rnnkit's results do not depend on the thread count)."""
    import rnnkit

    before = (torch.get_num_threads(), rnnkit.get_num_threads())
    torch.set_num_threads(1)
    rnnkit.set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    rnnkit.set_num_threads(before[1])


# --------------------------------------------------------------------------- helpers
def _seed(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def _modules(cell: str, dtype: torch.dtype, cfg: dict[str, Any]) -> tuple[Any, Any]:
    """A seeded ``torch.nn`` module and an ``rnnkit.torch`` one loaded from its state_dict."""
    kw = dict(cfg, dtype=dtype)
    if cell.startswith("rnn_"):
        kw["nonlinearity"] = cell.removeprefix("rnn_")
    torch_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    ours_cls = {"lstm": rt.LSTM, "gru": rt.GRU}.get(cell, rt.RNN)
    torch.manual_seed(_seed(cell, sorted(cfg.items()), str(dtype)))
    ref = torch_cls(I, H, **kw)
    ours = ours_cls(I, H, **kw)
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    return ref, ours


class _Problem:
    """Inputs for one call: leaf tensors, rebuilt identically for each module."""

    def __init__(self, cell: str, cfg: dict[str, Any], mode: str, dtype: torch.dtype) -> None:
        gen = torch.Generator().manual_seed(_seed(cell, sorted(cfg.items()), mode, str(dtype)))
        self.mode = mode
        self.batch_first = bool(cfg.get("batch_first", False))
        layers = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
        r = cfg.get("proj_size", 0) or H
        unbatched = mode == "unbatched"
        if unbatched:
            x_shape: tuple[int, ...] = (T, I)
        else:
            x_shape = (B, T, I) if self.batch_first else (T, B, I)
        state_batch: tuple[int, ...] = () if unbatched else (B,)
        self.x = torch.randn(x_shape, generator=gen, dtype=dtype)
        self.h0: torch.Tensor | None = None
        self.c0: torch.Tensor | None = None
        if mode != "padded_no_hx":
            self.h0 = torch.randn((layers, *state_batch, r), generator=gen, dtype=dtype)
            if cell == "lstm":
                self.c0 = torch.randn((layers, *state_batch, H), generator=gen, dtype=dtype)
        self.gen = gen

    def leaves(self) -> dict[str, torch.Tensor]:
        """Fresh leaf copies of the inputs that require a gradient."""
        out = {"x": self.x.clone().requires_grad_()}
        if self.h0 is not None:
            out["h0"] = self.h0.clone().requires_grad_()
        if self.c0 is not None:
            out["c0"] = self.c0.clone().requires_grad_()
        return out

    def call(self, module: Any, leaves: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        inp: Any = leaves["x"]
        if self.mode in LENGTHS:
            inp = pack_padded_sequence(
                inp,
                torch.tensor(LENGTHS[self.mode]),
                batch_first=self.batch_first,
                enforce_sorted=self.mode == "packed_sorted",
            )
        hx: Any = leaves.get("h0")
        if "c0" in leaves:
            hx = (leaves["h0"], leaves["c0"])
        return module(inp, hx) if hx is not None else module(inp)


def _flatten(out: Any, hidden: Any) -> list[torch.Tensor]:
    """The output tensors of a forward, in a fixed order (packed data for a PackedSequence)."""
    first = out.data if isinstance(out, PackedSequence) else out
    states = list(hidden) if isinstance(hidden, tuple) else [hidden]
    return [first, *states]


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    tol = TOLERANCE[expected.dtype]
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(
        actual, expected, rtol=tol, atol=tol * max(scale, 1e-30), msg=lambda m: f"{name}: {m}"
    )


def _loss(weights: list[torch.Tensor], tensors: list[torch.Tensor]) -> torch.Tensor:
    """The random linear loss ``sum_k sum(weights[k] * tensors[k])``."""
    return torch.stack([(w * t).sum() for w, t in zip(weights, tensors, strict=True)]).sum()


def _compare(ref: Any, ours: Any, problem: _Problem) -> None:
    """Outputs and every gradient of ``ours`` equal those of ``ref``."""
    leaves_ref, leaves_ours = problem.leaves(), problem.leaves()
    out_ref, hid_ref = problem.call(ref, leaves_ref)
    out_ours, hid_ours = problem.call(ours, leaves_ours)

    # the same return structure as torch
    assert type(out_ours) is type(out_ref)
    assert type(hid_ours) is type(hid_ref)
    if isinstance(out_ref, PackedSequence):
        assert torch.equal(out_ours.batch_sizes, out_ref.batch_sizes)
        for idx in ("sorted_indices", "unsorted_indices"):
            a, b = getattr(out_ours, idx), getattr(out_ref, idx)
            assert (a is None and b is None) or torch.equal(a, b), idx

    flat_ref, flat_ours = _flatten(out_ref, hid_ref), _flatten(out_ours, hid_ours)
    names = ["output", "h_n", "c_n"]
    for name, a, e in zip(names, flat_ours, flat_ref, strict=False):
        _assert_close(a.detach(), e.detach(), name)

    weights = [torch.randn(e.shape, generator=problem.gen, dtype=e.dtype) for e in flat_ref]
    _loss(weights, flat_ref).backward()
    _loss(weights, flat_ours).backward()
    for name, leaf in leaves_ref.items():
        _assert_close(leaves_ours[name].grad, leaf.grad, "d" + name)
    ours_params = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert ours_params[name].grad is not None, f"{name} got no gradient"
        _assert_close(ours_params[name].grad, p.grad, "d" + name)


def _cases() -> list[Any]:
    cases = []
    for cell in CELLS:
        for cfg_name, cfg in CONFIGS.items():
            if "proj_size" in cfg and cell != "lstm":
                continue
            for mode in MODES:
                if cfg.get("batch_first") and mode == "padded_no_hx":
                    continue  # covered by the other batch_first modes
                cases.append(pytest.param(cell, cfg_name, mode, id=f"{cell}-{cfg_name}-{mode}"))
    return cases


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("cell", "cfg_name", "mode"), _cases())
def test_parity_with_torch_nn(cell: str, cfg_name: str, mode: str, dtype: torch.dtype) -> None:
    cfg = CONFIGS[cfg_name]
    ref, ours = _modules(cell, dtype, cfg)
    if cfg.get("dropout"):
        ref.eval()
        ours.eval()
    _compare(ref, ours, _Problem(cell, cfg, mode, dtype))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["padded", "packed_unsorted"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_dropout_in_training_mode_draws_like_torch(
    cell: str, mode: str, dtype: torch.dtype
) -> None:
    """Inter-layer dropout uses torch's generator in torch's order: the same seed gives the
    same masks, hence the same outputs and gradients."""
    cfg = {"num_layers": 3, "dropout": 0.4, "bidirectional": True}
    ref, ours = _modules(cell, dtype, cfg)
    problem = _Problem(cell, cfg, mode, dtype)
    leaves_ref, leaves_ours = problem.leaves(), problem.leaves()
    torch.manual_seed(123)
    flat_ref = _flatten(*problem.call(ref, leaves_ref))
    torch.manual_seed(123)
    flat_ours = _flatten(*problem.call(ours, leaves_ours))
    for name, a, e in zip(["output", "h_n", "c_n"], flat_ours, flat_ref, strict=False):
        _assert_close(a.detach(), e.detach(), name)
    sum(e.sum() for e in flat_ref).backward()
    sum(a.sum() for a in flat_ours).backward()
    _assert_close(leaves_ours["x"].grad, leaves_ref["x"].grad, "dx")
    ours_params = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        _assert_close(ours_params[name].grad, p.grad, "d" + name)
    # and the dropout really is active: another seed changes the output
    torch.manual_seed(124)
    again = _flatten(*problem.call(ours, problem.leaves()))[0]
    assert not torch.equal(again, flat_ours[0])


def test_inference_under_no_grad_matches_and_builds_no_graph() -> None:
    ref, ours = _modules("lstm", torch.float64, CONFIGS["2layers_bidir"])
    x = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        y_ref, (h_ref, c_ref) = ref(x)
        y, (h, c) = ours(x)
    assert y.grad_fn is None and h.grad_fn is None and c.grad_fn is None
    for name, a, e in [("output", y, y_ref), ("h_n", h, h_ref), ("c_n", c, c_ref)]:
        _assert_close(a, e, name)


def test_backward_twice_with_retain_graph_accumulates() -> None:
    _, ours = _modules("gru", torch.float64, CONFIGS["1layer"])
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    y, _ = ours(x)
    y.sum().backward(retain_graph=True)
    first = x.grad.clone()
    y.sum().backward()
    _assert_close(x.grad, 2 * first, "dx")


@pytest.mark.parametrize("cell", CELLS)
def test_double_backward_raises_instead_of_dropping_second_order_terms(cell: str) -> None:
    """A gradient penalty through the recurrence: the input's gradient depends on the weights
    even though the incoming gradient (of ``y.sum()``) does not require grad. It must stay in
    the graph and raise when differentiated, not come back detached (a silently wrong
    weight gradient)."""
    _, ours = _modules(cell, torch.float64, CONFIGS["2layers_bidir"])
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    y = ours(x)[0]
    (dx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    assert dx.requires_grad
    with pytest.raises(RuntimeError, match="no double backward"):
        (y.sum() + (dx**2).sum()).backward()
    # first-order use of a create_graph gradient is unchanged
    y = ours(x)[0]
    (dx2,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    x.grad = None
    y.sum().backward()
    _assert_close(dx2.detach(), x.grad, "dx")


def test_functional_call_uses_the_given_parameters() -> None:
    ref, ours = _modules("lstm", torch.float64, CONFIGS["1layer"])
    params = {k: v.detach() * 0.5 for k, v in ref.named_parameters()}
    x = torch.randn(T, B, I, dtype=torch.float64)
    y_ref = torch.func.functional_call(ref, params, (x,))[0]
    y = torch.func.functional_call(ours, params, (x,))[0]
    _assert_close(y, y_ref, "output")


# --------------------------------------------------------------------------- gradcheck
GRADCHECK_CASES = [
    pytest.param(cell, cfg, mode, id=f"{cell}-{cid}-{mode}")
    for cell in CELLS
    for cid, cfg in [
        ("bidir", {"num_layers": 2, "bidirectional": True}),
        ("nobias_bf", {"bias": False, "batch_first": True}),
    ]
    for mode in ("padded", "packed")
] + [
    pytest.param("lstm", {"proj_size": 2, "bidirectional": True}, mode, id=f"lstm-proj-{mode}")
    for mode in ("padded", "packed")
]


@pytest.mark.parametrize(("cell", "cfg", "mode"), GRADCHECK_CASES)
def test_gradcheck_float64(cell: str, cfg: dict[str, Any], mode: str) -> None:
    """Analytical gradients (rnnkit's BPTT) against torch's finite differences, with respect
    to the input, h0, c0 and every parameter, on tiny shapes."""
    kw = dict(cfg, dtype=torch.float64)
    if cell.startswith("rnn_"):
        kw["nonlinearity"] = cell.removeprefix("rnn_")
    cls = {"lstm": rt.LSTM, "gru": rt.GRU}.get(cell, rt.RNN)
    torch.manual_seed(_seed("gradcheck", cell, mode, sorted(cfg.items())))
    m = cls(2, 3, **kw)
    steps, batch = 3, 3
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    r = kw.get("proj_size", 0) or 3
    bf = kw.get("batch_first", False)
    x = torch.randn((batch, steps, 2) if bf else (steps, batch, 2), dtype=torch.float64)
    h0 = torch.randn(layers, batch, r, dtype=torch.float64)
    c0 = torch.randn(layers, batch, 3, dtype=torch.float64)
    inputs = [x, h0] + ([c0] if cell == "lstm" else [])
    inputs = [t.requires_grad_() for t in inputs]
    params = list(m.parameters())
    n_in = len(inputs)

    def f(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inp: Any = args[0]
        if mode == "packed":
            lengths = torch.tensor([2, steps, 1])
            inp = pack_padded_sequence(inp, lengths, batch_first=bf, enforce_sorted=False)
        hx: Any = args[1] if cell != "lstm" else (args[1], args[2])
        out, hid = m(inp, hx)
        return tuple(_flatten(out, hid))

    assert torch.autograd.gradcheck(f, (*inputs, *params), eps=1e-6, atol=1e-7)
    assert len(params) > 0 and n_in >= 2


# --------------------------------------------------------------------------- from_torch
@pytest.mark.parametrize("cell", CELLS)
def test_from_torch_shares_parameters(cell: str) -> None:
    cfg = {"num_layers": 2, "bidirectional": True, "dropout": 0.25, "batch_first": True}
    if cell == "lstm":
        cfg["proj_size"] = 3
    ref, _ = _modules(cell, torch.float64, cfg)
    ref.eval()
    ours = rt.from_torch(ref)
    assert isinstance(ours, type(ref)) and type(ours).__module__ == "rnnkit.torch"
    assert not ours.training
    for attr in (
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
        "proj_size",
        "mode",
    ):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    if cell.startswith("rnn_"):
        assert ours.nonlinearity == ref.nonlinearity
    ref_params = dict(ref.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert list(ours_params) == list(ref_params)
    assert all(ours_params[k] is ref_params[k] for k in ref_params)

    x = torch.randn(B, T, I, dtype=torch.float64)
    before = ours(x)[0].detach().clone()
    _assert_close(before, ref(x)[0].detach(), "output")
    with torch.no_grad():  # mutate the torch module: the wrapper sees it
        ref.weight_hh_l0.mul_(0.5)
        ref.weight_ih_l1_reverse.add_(0.1)
    after = ours(x)[0]
    _assert_close(after.detach(), ref(x)[0].detach(), "output after mutation")
    assert not torch.equal(after.detach(), before)
    after.sum().backward()  # gradients land in the shared .grad
    assert ref.weight_hh_l0.grad is not None and ref.weight_hh_l0.grad.abs().sum() > 0
    with torch.no_grad():  # and the other way round
        ours.weight_ih_l0.zero_()
    assert bool((ref.weight_ih_l0 == 0).all())


def test_from_torch_rejects_other_modules() -> None:
    with pytest.raises(TypeError, match=r"got Conv1d$"):
        rt.from_torch(torch.nn.Conv1d(2, 3, 1))


# --------------------------------------------------------------------------- import isolation
def test_import_rnnkit_does_not_import_torch() -> None:
    code = (
        "import sys, rnnkit\n"
        "assert 'torch' not in sys.modules, 'import rnnkit imported torch'\n"
        "import rnnkit.torch as rt\n"
        "import torch\n"
        "assert rt.torch is torch and issubclass(rt.LSTM, torch.nn.LSTM)\n"
        "assert issubclass(rt.GRU, torch.nn.GRU) and issubclass(rt.RNN, torch.nn.RNN)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: (rt.LSTM(I, H), torch.empty(T, B, I, device="meta")), id="input"),
        pytest.param(lambda: (rt.GRU(I, H, device="meta"), torch.zeros(T, B, I)), id="module"),
    ],
)
def test_unsupported_device_is_a_clear_error(make: Callable[[], tuple[Any, Any]]) -> None:
    module, x = make()
    message = (
        r"runs on the CPU and CUDA devices, but input is on device 'meta'"
        if x.device.type == "meta"
        else r"weight_ih_l0 must be on the device of input \(cpu\), got 'meta'"
    )
    with pytest.raises(RuntimeError, match=message):
        module(x)


def test_unsupported_device_of_hx() -> None:
    module = rt.RNN(I, H)
    with pytest.raises(
        RuntimeError, match=r"hx must be on the device of input \(cpu\), got 'meta'"
    ):
        module(torch.zeros(T, B, I), torch.empty(1, B, H, device="meta"))


def test_unsupported_dtype_is_a_type_error() -> None:
    module = rt.LSTM(I, H, dtype=torch.float16)
    with pytest.raises(TypeError, match=r"float32 and float64.*torch\.float16"):
        module(torch.zeros(T, B, I, dtype=torch.float16))
    module32 = rt.GRU(I, H)
    with pytest.raises(TypeError, match=r"hx must have dtype torch\.float32"):
        module32(torch.zeros(T, B, I), torch.zeros(1, B, H, dtype=torch.float64))


def test_input_dtype_mismatch_and_bad_shapes_fail_as_in_torch() -> None:
    module = rt.LSTM(I, H)
    with pytest.raises(ValueError, match="does not match weight dtype"):
        module(torch.zeros(T, B, I, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Expected hidden"):
        module(torch.zeros(T, B, I), (torch.zeros(1, B + 1, H), torch.zeros(1, B, H)))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        module(torch.zeros(T))


def test_in_place_change_before_backward_is_detected() -> None:
    module = rt.RNN(I, H, dtype=torch.float64)
    y, _ = module(torch.randn(T, B, I, dtype=torch.float64))
    with torch.no_grad():
        module.weight_hh_l0.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# --------------------------------------------------------------------------- single-step cells
CELL_CLASSES = ["LSTMCell", "GRUCell", "RNNCell_tanh", "RNNCell_relu"]


def _cells(name: str, dtype: torch.dtype, bias: bool) -> tuple[Any, Any]:
    """A seeded torch.nn cell and the rnnkit.torch one sharing its parameters (from_torch)."""
    cls, _, act = name.partition("_")
    kw: dict[str, Any] = {"bias": bias, "dtype": dtype}
    if act:
        kw["nonlinearity"] = act
    torch.manual_seed(_seed(name, bias, str(dtype)))
    ref = getattr(torch.nn, cls)(I, H, **kw)
    ours = rt.from_torch(ref)
    assert type(ours) is getattr(rt, cls)
    assert ours.weight_ih is ref.weight_ih and ours.weight_hh is ref.weight_hh
    return ref, ours


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mode", ["batched", "unbatched", "no_hx"])
@pytest.mark.parametrize("name", CELL_CLASSES)
def test_cells_match_torch_forward_and_backward(
    name: str, mode: str, bias: bool, dtype: torch.dtype
) -> None:
    """rnnkit.torch's cells give torch.nn's outputs and the gradients of the input, the
    states and every parameter (one step run as a sequence of one, weights read in place)."""
    ref, ours = _cells(name, dtype, bias)
    gen = torch.Generator().manual_seed(_seed(name, mode))
    batch = () if mode == "unbatched" else (B,)
    x = torch.randn((*batch, I), generator=gen, dtype=dtype)
    states = [torch.randn((*batch, H), generator=gen, dtype=dtype) for _ in range(2)]
    results = []
    for module in (ours, ref):
        outs, grads = torch_cell_step(module, x, states, mode, name == "LSTMCell")
        results.append([*outs, *grads])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert len(results[0]) == len(results[1])
    for got, want in zip(*results, strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", CELL_CLASSES)
def test_cells_gradcheck(name: str) -> None:
    _, ours = _cells(name, torch.float64, True)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn((3, I), generator=gen, dtype=torch.float64, requires_grad=True)
    h = torch.randn((3, H), generator=gen, dtype=torch.float64, requires_grad=True)
    c = torch.randn((3, H), generator=gen, dtype=torch.float64, requires_grad=True)
    params = list(ours.parameters())

    def f(*args: torch.Tensor) -> Any:
        return ours(args[0], (args[1], args[2])) if name == "LSTMCell" else ours(args[0], args[1])

    inputs = (x, h, c) if name == "LSTMCell" else (x, h)
    assert torch.autograd.gradcheck(f, (*inputs, *params), eps=1e-6, atol=1e-7)


def test_cells_load_torch_state_dicts_and_refuse_bad_input() -> None:
    ref = torch.nn.LSTMCell(I, H)
    ours = rt.LSTMCell(I, H)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, I)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    bad = [
        (
            lambda: ours(torch.randn(2, 2, I)),
            ValueError,
            "LSTMCell: Expected input to be 1D or 2D, got 3D instead",
        ),
        (
            lambda: ours(torch.randn(2, I + 1)),
            RuntimeError,
            f"input has inconsistent input_size: got {I + 1} expected {I}",
        ),
        (
            lambda: ours(x, (torch.randn(B + 1, H), torch.randn(B + 1, H))),
            RuntimeError,
            f"Input batch size {B} doesn't match hidden0 batch size {B + 1}",
        ),
        (
            lambda: ours(x, (torch.randn(B, H + 1), torch.randn(B, H))),
            RuntimeError,
            f"hidden0 has inconsistent hidden_size: got {H + 1}, expected {H}",
        ),
        (
            lambda: ours(x[0], (torch.randn(B, H), torch.randn(B, H))),
            RuntimeError,
            "For unbatched 1-D input, hx should also be 1-D but got 2-D tensor",
        ),
        (
            lambda: ours(x, (torch.randn(B, H),)),
            TypeError,
            "LSTMCell: hx must be a tuple (h, c) of tensors or None",
        ),
        (
            lambda: ours(x.double()),
            TypeError,
            "input must have dtype torch.float32 (the dtype of the parameters), got torch.float64",
        ),
        (
            lambda: rt.GRUCell(I, H).half()(x.half()),
            TypeError,
            "rnnkit.torch.GRUCell supports float32 and float64 parameters, got torch.float16; "
            "convert the module with .float() or .double()",
        ),
        (
            lambda: rt.from_torch(torch.nn.Linear(2, 2)),
            TypeError,
            "from_torch expects a torch.nn.LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell, "
            "got Linear",
        ),
    ]
    for call, error, message in bad:
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            call()


def test_cells_see_parameters_changed_in_place_or_replaced() -> None:
    """A cell keeps NumPy views of its parameters between inference calls: an in-place update
    (an optimizer step) must show, and so must a parameter replaced, given new storage or a
    new layout; pickling drops the views."""
    ref = torch.nn.GRUCell(I, H)
    ours = rt.from_torch(ref)
    x = torch.randn(B, I)
    with torch.no_grad():
        first = ours(x)
        torch.testing.assert_close(first, ref(x))
        ref.weight_hh.mul_(0.5)  # in place, shared with ours
        torch.testing.assert_close(ours(x), ref(x))
        ours.weight_ih.data = ours.weight_ih.data * 2.0  # new storage
        ref.weight_ih.data = ours.weight_ih.data
        torch.testing.assert_close(ours(x), ref(x))
        ours.bias_hh = torch.nn.Parameter(torch.zeros(3 * H))  # replaced
        ref.bias_hh = ours.bias_hh
        torch.testing.assert_close(ours(x), ref(x))
    # The same memory and shape in a new layout: a square weight swapped for its transpose
    square_ref = torch.nn.RNNCell(H, H)
    square = rt.from_torch(square_ref)
    h = torch.randn(B, H)
    with torch.no_grad():
        torch.testing.assert_close(square(h, h), square_ref(h, h))
        square.weight_hh.data = square.weight_hh.data.t()
        square_ref.weight_hh.data = square.weight_hh.data
        torch.testing.assert_close(square(h, h), square_ref(h, h))
    clone = pickle.loads(pickle.dumps(ours))
    assert "_views" not in clone.__dict__
    with torch.no_grad():
        torch.testing.assert_close(clone(x), ours(x))
        copied = copy.deepcopy(ours)
        torch.testing.assert_close(copied(x), ours(x))
