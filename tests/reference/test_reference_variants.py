"""Tests of the reference's issue-3 features: lengths, reverse and the cell variants.

``lengths`` and ``reverse`` for every cell; the LSTM's projection (``w_hr``), peepholes,
coupled input-forget gate (``input_forget``) and ``clip``; the GRU's
``linear_before_reset=False`` and ``clip``; the RNN's ``clip``. Checked the way
``test_reference.py`` checks the plain cells:

* central finite differences in float64 of every input and parameter, for every variant
  and the combinations that make sense, on tiny shapes (clip values are chosen so that
  some pre-activations are clipped and none is within reach of the perturbation);
* PyTorch where it has the feature: ``proj_size``, ``pack_padded_sequence`` for lengths,
  the reverse direction of a bidirectional module for ``reverse`` (to 1e-10, float64);
* identities: ``lengths=None`` is ``lengths=[T]*B``, reverse is forward on ``x`` flipped
  in time (and, with lengths, per sequence), unused CIFG rows do not matter, a huge clip is
  no clip, a cell is the ``T = 1`` sequence; and an independent transcription of the
  contract's formulas for the variants torch does not have;
* argument validation (messages as in the contract), padding never read, caches.
"""

from __future__ import annotations

import contextlib
import importlib
import zlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
import pytest
from rnnkit import reference as ref

GATES = {"lstm": 4, "gru": 3, "rnn": 1}

# Tiny shapes for the finite-difference checks: T steps, B batch, I input, H hidden,
# P projection. LENGTHS has a 0, a T and one in between, unsorted.
T, B, I, H, P = 3, 3, 2, 3, 2  # noqa: E741
LENGTHS = np.array([2, 3, 0])

# A configuration: the cell kind and the variants it uses.
#   proj: LSTM w_hr [P, H]; peep: LSTM peepholes [3, H]; cifg: LSTM input_forget=True;
#   clip: a clip value (chosen per problem); lbr0: GRU linear_before_reset=False.
CONFIGS: dict[str, tuple[str, frozenset[str]]] = {
    "lstm": ("lstm", frozenset()),
    "lstm_proj": ("lstm", frozenset({"proj"})),
    "lstm_peep": ("lstm", frozenset({"peep"})),
    "lstm_cifg": ("lstm", frozenset({"cifg"})),
    "lstm_clip": ("lstm", frozenset({"clip"})),
    "lstm_peep_cifg": ("lstm", frozenset({"peep", "cifg"})),
    "lstm_proj_peep": ("lstm", frozenset({"proj", "peep"})),
    "lstm_all": ("lstm", frozenset({"proj", "peep", "cifg", "clip"})),
    "gru": ("gru", frozenset()),
    "gru_lbr0": ("gru", frozenset({"lbr0"})),
    "gru_clip": ("gru", frozenset({"clip"})),
    "gru_lbr0_clip": ("gru", frozenset({"lbr0", "clip"})),
    "rnn_tanh": ("rnn_tanh", frozenset()),
    "rnn_relu": ("rnn_relu", frozenset()),
    "rnn_tanh_clip": ("rnn_tanh", frozenset({"clip"})),
    "rnn_relu_clip": ("rnn_relu", frozenset({"clip"})),
}
BASE = ("lstm", "gru", "rnn_tanh", "rnn_relu")
VARIANTS = tuple(c for c in CONFIGS if c not in BASE)
# Sequence modes: (lengths given, reverse).
MODES = {
    "plain": (False, False),
    "lengths": (True, False),
    "reverse": (False, True),
    "lengths_reverse": (True, True),
}

Params = dict[str, Any]
Options = dict[str, Any]


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: different per test, the same every run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def base_kind(kind: str) -> str:
    return kind.split("_")[0]


def make_params(
    rng: np.random.Generator,
    config: str,
    level: str,
    *,
    steps: int = T,
    batch: int = B,
    inp: int = I,
    hid: int = H,
    proj: int = P,
    bias: bool = True,
    state: bool = True,
    dtype: Any = np.float64,
) -> Params:
    """Random non-zero inputs and parameters of ``config`` (None where absent)."""
    kind, variants = CONFIGS[config]
    g = GATES[base_kind(kind)]
    lstm = kind == "lstm"
    out = proj if "proj" in variants else hid  # R, the size of h

    def draw(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(dtype)

    x_shape = (steps, batch, inp) if level == "seq" else (batch, inp)
    return {
        "x": draw(*x_shape),
        "h0": draw(batch, out) if state else None,
        "c0": draw(batch, hid) if state and lstm else None,
        "w_ih": draw(g * hid, inp, scale=0.6),
        "w_hh": draw(g * hid, out, scale=0.6),
        "b_ih": draw(g * hid, scale=0.5) if bias else None,
        "b_hh": draw(g * hid, scale=0.5) if bias else None,
        "w_hr": draw(proj, hid, scale=0.8) if "proj" in variants else None,
        "peepholes": draw(3, hid, scale=0.5) if "peep" in variants else None,
    }


def make_options(
    config: str,
    level: str,
    mode: str = "plain",
    *,
    clip: float | None = None,
    lengths: np.ndarray = LENGTHS,
) -> Options:
    """The keyword arguments of ``config`` (``clip`` the value to use if it clips)."""
    _, variants = CONFIGS[config]
    opts: Options = {}
    if level == "seq":
        with_lengths, reverse = MODES[mode]
        if with_lengths:
            opts["lengths"] = lengths.copy()
        if reverse:
            opts["reverse"] = True
    if "cifg" in variants:
        opts["input_forget"] = True
    if "lbr0" in variants:
        opts["linear_before_reset"] = False
    if "clip" in variants:
        opts["clip"] = clip
    return opts


def forward(config: str, level: str, p: Params, opts: Options) -> tuple[dict[str, Any], Any]:
    """Run the reference forward: outputs by name (``y``, ``h_n``, ``c_n``), cache."""
    kind, _ = CONFIGS[config]
    w = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    kw = dict(opts)
    if kind == "lstm":
        kw |= {"w_hr": p["w_hr"], "peepholes": p["peepholes"]}
        if level == "seq":
            y, h, c, cache = ref.lstm_forward(p["x"], p["h0"], p["c0"], *w, **kw)
            return {"y": y, "h_n": h, "c_n": c}, cache
        h, c, cache = ref.lstm_cell_forward(p["x"], p["h0"], p["c0"], *w, **kw)
        return {"h_n": h, "c_n": c}, cache
    if kind.startswith("rnn"):
        kw["nonlinearity"] = kind.split("_")[1]
    fn = {
        ("gru", "seq"): ref.gru_forward,
        ("gru", "cell"): ref.gru_cell_forward,
        ("rnn", "seq"): ref.rnn_forward,
        ("rnn", "cell"): ref.rnn_cell_forward,
    }[base_kind(kind), level]
    if level == "seq":
        y, h, cache = fn(p["x"], p["h0"], *w, **kw)
        return {"y": y, "h_n": h}, cache
    h, cache = fn(p["x"], p["h0"], *w, **kw)
    return {"h_n": h}, cache


# Gradient field names of the results, mapped to the parameter they belong to.
FIELD_TO_PARAM = {
    "dx": "x",
    "dh0": "h0",
    "dh": "h0",
    "dc0": "c0",
    "dc": "c0",
    "dw_ih": "w_ih",
    "dw_hh": "w_hh",
    "db_ih": "b_ih",
    "db_hh": "b_hh",
    "dw_hr": "w_hr",
    "dpeepholes": "peepholes",
}


def backward(config: str, level: str, g: dict[str, Any], cache: Any) -> dict[str, Any]:
    """Run the reference backward: gradients keyed by parameter name (``x``, ``h0``...)."""
    kind, _ = CONFIGS[config]
    if kind == "lstm":
        if level == "seq":
            res = ref.lstm_backward(g.get("y"), g.get("h_n"), g.get("c_n"), cache)
        else:
            res = ref.lstm_cell_backward(g.get("h_n"), g.get("c_n"), cache)
    else:
        fn = {
            ("gru", "seq"): ref.gru_backward,
            ("gru", "cell"): ref.gru_cell_backward,
            ("rnn", "seq"): ref.rnn_backward,
            ("rnn", "cell"): ref.rnn_cell_backward,
        }[base_kind(kind), level]
        res = fn(g.get("y"), g.get("h_n"), cache) if level == "seq" else fn(g.get("h_n"), cache)
    return {FIELD_TO_PARAM[f]: v for f, v in res._asdict().items()}


def output_grads(rng: np.random.Generator, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Random weights of the loss, one per output (the same dtype)."""
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in outputs.items()}


def loss(config: str, level: str, p: Params, opts: Options, g: dict[str, Any]) -> float:
    """``sum(y*gy) + sum(h_n*gh) (+ sum(c_n*gc))``."""
    outputs, _ = forward(config, level, p, opts)
    return float(sum(np.sum(outputs[k] * g[k]) for k in outputs))


def numerical_grad(
    config: str, level: str, p: Params, opts: Options, g: dict[str, Any], name: str
) -> np.ndarray:
    """Central differences of :func:`loss` for every coordinate of ``p[name]``."""
    eps = 1e-6
    a = p[name]
    out = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        orig = a[idx]
        a[idx] = orig + eps
        up = loss(config, level, p, opts, g)
        a[idx] = orig - eps
        down = loss(config, level, p, opts, g)
        a[idx] = orig
        out[idx] = (up - down) / (2 * eps)
    return out


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|`` (0 when both are all zeros)."""
    num = float(np.max(np.abs(a - b), initial=0.0))
    den = float(np.max(np.abs(b), initial=0.0))
    return 0.0 if num == 0.0 else num / max(den, 1e-300)


REF_MODULES = [importlib.import_module(f"rnnkit.reference.{m}") for m in ("lstm", "gru", "rnn")]


@contextlib.contextmanager
def recorded_preactivations() -> Iterator[list[np.ndarray]]:
    """Record every gate pre-activation the reference computes (before any clamp).

    Every gate goes through ``clip_preactivation`` (with ``clip=None`` too), so wrapping
    it in the cell modules sees them all (except the unused f gate of CIFG).
    """
    seen: list[np.ndarray] = []
    original = REF_MODULES[0].clip_preactivation

    def recording(pre: np.ndarray, clip: float | None) -> Any:
        seen.append(np.array(pre, copy=True))
        return original(pre, clip)

    with contextlib.ExitStack() as stack:
        for module in REF_MODULES:
            stack.enter_context(mock.patch.object(module, "clip_preactivation", recording))
        yield seen


def kinks(config: str, level: str, p: Params, opts: Options) -> tuple[float, float]:
    """``(distance of the nearest pre-activation to a kink, fraction clipped)``.

    Kinks: ``+-clip`` where the clamp starts, 0 for relu. A finite-difference step of
    1e-6 moves a pre-activation by far less than 1e-4, so a margin above that means no
    perturbation crosses a kink.
    """
    with recorded_preactivations() as seen:
        forward(config, level, p, opts)
    pre = np.abs(np.concatenate([s.ravel() for s in seen]))
    if pre.size == 0:
        return np.inf, 0.0
    margin = np.inf
    clip = opts.get("clip")
    if clip is not None:
        margin = float(np.min(np.abs(pre - clip)))
    if CONFIGS[config][0] == "rnn_relu":
        margin = min(margin, float(np.min(pre)))
    clipped = 0.0 if clip is None else float(np.mean(pre > clip))
    return margin, clipped


def draw_fd_problem(
    rng: np.random.Generator,
    config: str,
    level: str,
    mode: str = "plain",
    **kw: Any,
) -> tuple[Params, Options]:
    """A problem whose pre-activations are all at least 1e-4 from every kink, and (with
    clip) where between 10% and 60% of them are clipped."""
    uses_clip = "clip" in CONFIGS[config][1]
    for _ in range(50):
        p = make_params(rng, config, level, **kw)
        opts = make_options(config, level, mode)
        if not uses_clip:
            if kinks(config, level, p, opts)[0] > 1e-4:
                return p, opts
            continue
        with recorded_preactivations() as seen:
            forward(config, level, p, opts)  # opts["clip"] is None here
        pre = np.abs(np.concatenate([s.ravel() for s in seen]))
        for q in (0.6, 0.7, 0.5, 0.8, 0.4):
            opts["clip"] = float(np.quantile(pre, q)) + 0.01
            margin, clipped = kinks(config, level, p, opts)
            if margin > 1e-4 and 0.1 <= clipped <= 0.6:
                return p, opts
    raise AssertionError("no kink-free problem drawn")  # pragma: no cover


def check_finite_differences(
    config: str, level: str, p: Params, opts: Options, rng: np.random.Generator
) -> None:
    """Every gradient the backward returns against central differences (rel. 1e-6)."""
    outputs, cache = forward(config, level, p, opts)
    g = output_grads(rng, outputs)
    grads = backward(config, level, g, cache)
    assert set(grads) <= set(p)
    for name, a in p.items():
        if name not in grads:  # c0 of GRU / RNN
            assert a is None
            continue
        if a is None:
            if name in ("h0", "c0"):  # the gradient of the zero initial state
                assert grads[name] is not None
            else:
                assert grads[name] is None, name
            continue
        assert grads[name].shape == a.shape, name
        assert grads[name].dtype == np.float64, name
        num = numerical_grad(config, level, p, opts, g, name)
        err = rel_err(grads[name], num)
        assert err < 1e-6, f"{name}: relative error {err:.3g}"


# --------------------------------------------------------------------------- gradients
FD_SEQ = [(c, m) for c in BASE for m in MODES] + [
    (c, m) for c in VARIANTS for m in ("plain", "lengths_reverse")
]


@pytest.mark.parametrize(("config", "mode"), FD_SEQ, ids=[f"{c}-{m}" for c, m in FD_SEQ])
def test_finite_differences_sequence(rng: np.random.Generator, config: str, mode: str) -> None:
    p, opts = draw_fd_problem(rng, config, "seq", mode)
    check_finite_differences(config, "seq", p, opts, rng)


@pytest.mark.parametrize("config", VARIANTS)
def test_finite_differences_cell(rng: np.random.Generator, config: str) -> None:
    p, opts = draw_fd_problem(rng, config, "cell")
    check_finite_differences(config, "cell", p, opts, rng)


@pytest.mark.parametrize("config", ["lstm_all", "lstm_proj", "gru_lbr0_clip", "rnn_relu_clip"])
def test_finite_differences_no_bias_no_state(rng: np.random.Generator, config: str) -> None:
    p, opts = draw_fd_problem(rng, config, "seq", "lengths_reverse", bias=False, state=False)
    check_finite_differences(config, "seq", p, opts, rng)


def test_finite_differences_see_the_clip(rng: np.random.Generator) -> None:
    """The clip chosen for the finite differences does clip, and changes the result."""
    p, opts = draw_fd_problem(rng, "lstm_all", "seq", "lengths_reverse")
    margin, clipped = kinks("lstm_all", "seq", p, opts)
    assert margin > 1e-4 and 0.1 <= clipped <= 0.6
    clipped_out, _ = forward("lstm_all", "seq", p, opts)
    free_out, _ = forward("lstm_all", "seq", p, dict(opts, clip=None))
    assert not np.allclose(clipped_out["y"], free_out["y"])


# --------------------------------------------------------------------------- PyTorch
def torch_run(
    config: str,
    p: Params,
    g: dict[str, np.ndarray],
    lengths: np.ndarray | None,
    reverse: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and autograd gradients of the same sequence problem through ``torch.nn``.

    Lengths go through ``pack_padded_sequence(enforce_sorted=False)``; ``reverse`` is the
    reverse direction of a bidirectional module (its forward direction keeps torch's
    random weights and a random initial state, and takes no part in the loss).
    """
    torch = pytest.importorskip("torch")
    nn = torch.nn
    kind, variants = CONFIGS[config]
    base = base_kind(kind)
    inp, hid = p["w_ih"].shape[1], p["w_hh"].shape[0] // GATES[base]
    kwargs: dict[str, Any] = {
        "bias": p["b_ih"] is not None,
        "dtype": torch.float64,
        "bidirectional": reverse,
    }
    if base == "rnn":
        kwargs["nonlinearity"] = kind.split("_")[1]
    if "proj" in variants:
        kwargs["proj_size"] = p["w_hr"].shape[0]
    torch.manual_seed(0)
    module = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[base](inp, hid, **kwargs)
    suffix = "_l0_reverse" if reverse else "_l0"
    torch_names = {
        "w_ih": "weight_ih",
        "w_hh": "weight_hh",
        "b_ih": "bias_ih",
        "b_hh": "bias_hh",
        "w_hr": "weight_hr",
    }
    with torch.no_grad():
        for k, tk in torch_names.items():
            if p[k] is not None:
                getattr(module, tk + suffix).copy_(torch.from_numpy(p[k]))

    x = torch.tensor(p["x"], requires_grad=True)
    h0 = torch.tensor(p["h0"], requires_grad=True)
    c0 = torch.tensor(p["c0"], requires_grad=True) if base == "lstm" else None

    def directions(s: Any) -> Any:  # [B, S] -> [D, B, S]; ours is the last direction
        return torch.stack([torch.randn_like(s), s]) if reverse else s[None]

    hx = directions(h0) if c0 is None else (directions(h0), directions(c0))
    if lengths is None:
        y, state = module(x, hx)
    else:
        packed = nn.utils.rnn.pack_padded_sequence(
            x, torch.from_numpy(lengths.astype(np.int64)), enforce_sorted=False
        )
        y_packed, state = module(packed, hx)
        y, _ = nn.utils.rnn.pad_packed_sequence(y_packed, total_length=x.shape[0])
    out_size = h0.shape[1]
    outputs = {"y": y[..., out_size:] if reverse else y}
    if base == "lstm":
        outputs["h_n"], outputs["c_n"] = state[0][-1], state[1][-1]
    else:
        outputs["h_n"] = state[-1]

    total = sum((v * torch.from_numpy(g[k])).sum() for k, v in outputs.items())
    total.backward()
    grads = {"x": x.grad.numpy(), "h0": h0.grad.numpy()}
    if c0 is not None:
        grads["c0"] = c0.grad.numpy()
    for k, tk in torch_names.items():
        if p[k] is not None:
            grads[k] = getattr(module, tk + suffix).grad.numpy()
    return {k: v.detach().numpy() for k, v in outputs.items()}, grads


TORCH_CONFIGS = ("lstm", "lstm_proj", "gru", "rnn_tanh", "rnn_relu")
TORCH_CASES = (
    [(c, m, True) for c in TORCH_CONFIGS for m in ("lengths", "reverse", "lengths_reverse")]
    + [(c, "lengths_reverse", False) for c in TORCH_CONFIGS]
    + [("lstm_proj", "plain", True), ("lstm_proj", "plain", False)]
)


@pytest.mark.parametrize(
    ("config", "mode", "bias"),
    TORCH_CASES,
    ids=[f"{c}-{m}-{'bias' if b else 'nobias'}" for c, m, b in TORCH_CASES],
)
def test_torch_parity(rng: np.random.Generator, config: str, mode: str, bias: bool) -> None:
    lengths = np.array([5, 2, 1, 4])  # torch packs only lengths >= 1
    p = make_params(rng, config, "seq", steps=5, batch=4, inp=3, hid=4, proj=3, bias=bias)
    opts = make_options(config, "seq", mode, lengths=lengths)
    outputs, cache = forward(config, "seq", p, opts)
    g = output_grads(rng, outputs)
    grads = backward(config, "seq", g, cache)
    with_lengths, reverse = MODES[mode]
    t_outputs, t_grads = torch_run(config, p, g, lengths if with_lengths else None, reverse)

    assert outputs.keys() == t_outputs.keys()
    for k, v in t_outputs.items():
        assert rel_err(outputs[k], v) < 1e-10, k
    assert t_grads.keys() == {k for k, v in p.items() if v is not None}
    for k, v in t_grads.items():
        assert rel_err(grads[k], v) < 1e-10, k
    for k in set(grads) - set(t_grads):  # absent biases, projection, peepholes
        assert grads[k] is None, k


# --------------------------------------------------------------------------- identities
def assert_same(a: dict[str, Any], b: dict[str, Any], rtol: float = 0.0) -> None:
    """Equal dicts of arrays (``None`` matching ``None``), exactly or to ``rtol``."""
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
        elif rtol == 0.0:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert rel_err(a[k], b[k]) <= rtol, k


def run(
    config: str, level: str, p: Params, opts: Options, g: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    outputs, cache = forward(config, level, p, opts)
    return outputs, backward(config, level, g, cache)


def fixed_clip(config: str, opts: Options) -> Options:
    """``opts`` with a clip value that clips some gates of :func:`make_params` problems."""
    return dict(opts, clip=0.8) if "clip" in CONFIGS[config][1] else opts


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_no_lengths_is_full_lengths(rng: np.random.Generator, config: str, reverse: bool) -> None:
    p = make_params(rng, config, "seq")
    opts = fixed_clip(config, make_options(config, "seq", "reverse" if reverse else "plain"))
    outputs, cache = forward(config, "seq", p, opts)
    g = output_grads(rng, outputs)
    expected = (outputs, backward(config, "seq", g, cache))
    for dtype in (np.int64, np.int32, np.uint8, np.int16, np.uint64):
        full = dict(opts, lengths=np.full(B, T, dtype=dtype))
        assert_same(run(config, "seq", p, full, g)[0], expected[0])
        assert_same(run(config, "seq", p, full, g)[1], expected[1])
    as_list = dict(opts, lengths=[T] * B)
    assert_same(run(config, "seq", p, as_list, g)[1], expected[1])


@pytest.mark.parametrize("config", list(CONFIGS))
def test_reverse_is_forward_on_flipped_time(rng: np.random.Generator, config: str) -> None:
    p = make_params(rng, config, "seq", steps=4)
    opts = fixed_clip(config, make_options(config, "seq"))
    outputs, cache = forward(config, "seq", p, dict(opts, reverse=True))
    g = output_grads(rng, outputs)
    grads = backward(config, "seq", g, cache)

    flipped = dict(p, x=p["x"][::-1].copy())
    g_flipped = dict(g, y=g["y"][::-1].copy())
    f_outputs, f_grads = run(config, "seq", flipped, opts, g_flipped)
    f_outputs["y"] = f_outputs["y"][::-1]
    f_grads["x"] = f_grads["x"][::-1]
    assert_same(outputs, f_outputs, rtol=1e-14)
    assert_same(grads, f_grads, rtol=1e-14)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_lengths_are_separate_sequences(
    rng: np.random.Generator, config: str, reverse: bool
) -> None:
    """Each sequence ``b`` run on its own ``x[:len_b, b]`` without lengths gives the same
    outputs (0 beyond its length), gradients (dx 0 beyond its length) and, summed over
    the batch, the same parameter gradients."""
    lengths = np.array([4, 0, 2, 1])
    p = make_params(rng, config, "seq", steps=4, batch=4)
    opts = fixed_clip(config, make_options(config, "seq", "plain"))
    if reverse:
        opts["reverse"] = True
    outputs, cache = forward(config, "seq", p, dict(opts, lengths=lengths))
    g = output_grads(rng, outputs)
    grads = backward(config, "seq", g, cache)

    param_sums: dict[str, Any] = {}
    for b, n in enumerate(lengths):
        rows = slice(b, b + 1)
        pb = dict(p, x=p["x"][:n, rows])
        for k in ("h0", "c0"):
            pb[k] = None if p[k] is None else p[k][rows]
        gb = {k: v[:n, rows] if k == "y" else v[rows] for k, v in g.items()}
        out_b, grads_b = run(config, "seq", pb, opts, gb)
        for k, v in out_b.items():
            got = outputs[k][:n, b] if k == "y" else outputs[k][b]
            assert rel_err(got, v[:, 0] if k == "y" else v[0]) < 1e-13, (b, k)
        assert not np.any(outputs["y"][n:, b])
        assert rel_err(grads["x"][:n, b], grads_b["x"][:, 0]) < 1e-13, b
        assert not np.any(grads["x"][n:, b])
        for k in ("h0", "c0"):
            if grads.get(k) is not None:
                assert rel_err(grads[k][b], grads_b[k][0]) < 1e-13, (b, k)
        for k, v in grads_b.items():
            if k not in ("x", "h0", "c0") and v is not None:
                param_sums[k] = param_sums.get(k, 0) + v
    for k, v in param_sums.items():
        assert rel_err(grads[k], v) < 1e-12, k


@pytest.mark.parametrize("mode", ["plain", "lengths_reverse"])
@pytest.mark.parametrize("config", ["lstm_cifg", "lstm_peep_cifg", "lstm_all"])
def test_cifg_ignores_forget_rows(rng: np.random.Generator, config: str, mode: str) -> None:
    p = make_params(rng, config, "seq")
    opts = fixed_clip(config, make_options(config, "seq", mode))
    outputs, cache = forward(config, "seq", p, opts)
    g = output_grads(rng, outputs)
    grads = backward(config, "seq", g, cache)

    changed = {k: (None if v is None else v.copy()) for k, v in p.items()}
    f_rows = slice(H, 2 * H)
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
        changed[k][f_rows] = 100 * rng.standard_normal(changed[k][f_rows].shape)
    if changed["peepholes"] is not None:
        changed["peepholes"][1] = 100.0
    c_outputs, c_grads = run(config, "seq", changed, opts, g)
    assert_same(outputs, c_outputs)
    assert_same(grads, c_grads)
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
        assert not np.any(grads[k][f_rows]), k
        assert np.all(np.delete(grads[k], np.r_[f_rows], axis=0) != 0), k
    if grads["peepholes"] is not None:
        assert not np.any(grads["peepholes"][1])
        assert np.all(grads["peepholes"][[0, 2]] != 0)


@pytest.mark.parametrize("level", ["cell", "seq"])
@pytest.mark.parametrize("config", [c for c in VARIANTS if "clip" in CONFIGS[c][1]])
def test_huge_clip_is_no_clip(rng: np.random.Generator, config: str, level: str) -> None:
    p = make_params(rng, config, level)
    mode = "lengths_reverse" if level == "seq" else "plain"
    opts = make_options(config, level, mode)  # clip=None
    outputs, cache = forward(config, level, p, opts)
    g = output_grads(rng, outputs)
    expected = (outputs, backward(config, level, g, cache))
    for huge in (1e30, 1e300, 1e5):
        got = run(config, level, p, dict(opts, clip=huge), g)
        assert_same(got[0], expected[0])
        assert_same(got[1], expected[1])


@pytest.mark.parametrize("config", list(CONFIGS))
def test_cell_is_one_step_sequence(rng: np.random.Generator, config: str) -> None:
    p = make_params(rng, config, "cell")
    opts = fixed_clip(config, make_options(config, "cell"))
    outputs, cache = forward(config, "cell", p, opts)
    g = output_grads(rng, outputs)
    grads = backward(config, "cell", g, cache)

    seq_p = dict(p, x=p["x"][None])
    for reverse in (False, True):
        seq_opts = dict(opts, reverse=reverse, lengths=np.ones(B, dtype=np.int32))
        seq_out, seq_grads = run(config, "seq", seq_p, seq_opts, dict(g, y=None))
        assert_same({k: v for k, v in seq_out.items() if k != "y"}, outputs)
        np.testing.assert_array_equal(seq_out["y"][0], outputs["h_n"])
        seq_grads["x"] = seq_grads["x"][0]
        assert_same(seq_grads, grads)


# ---------------------------------------------------------------- the contract's formulas
def sig(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def test_lstm_variants_follow_the_formulas(rng: np.random.Generator) -> None:
    """An independent transcription of the contract's LSTM step, all variants on."""
    p = make_params(rng, "lstm_all", "cell", batch=5)
    x, h, c, w_ih, w_hh = p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"]
    b = p["b_ih"] + p["b_hh"]
    p_i, _, p_o = p["peepholes"]
    clip = 0.7

    def cl(a: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(a, -clip), clip)

    a = x @ w_ih.T + h @ w_hh.T + b
    i = sig(cl(a[:, :H] + p_i * c))
    f = 1 - i
    g = np.tanh(cl(a[:, 2 * H : 3 * H]))
    c1 = f * c + i * g
    o = sig(cl(a[:, 3 * H :] + p_o * c1))
    h1 = (o * np.tanh(c1)) @ p["w_hr"].T
    out, _ = forward("lstm_all", "cell", p, {"input_forget": True, "clip": clip})
    assert rel_err(out["h_n"], h1) < 1e-14
    assert rel_err(out["c_n"], c1) < 1e-14

    # Peepholes without CIFG: f peeks at the previous cell state too.
    q = make_params(rng, "lstm_peep", "cell", batch=5)
    a = q["x"] @ q["w_ih"].T + q["h0"] @ q["w_hh"].T + q["b_ih"] + q["b_hh"]
    pi, pf, po = q["peepholes"]
    c = q["c0"]
    c1 = sig(a[:, H : 2 * H] + pf * c) * c + sig(a[:, :H] + pi * c) * np.tanh(a[:, 2 * H : 3 * H])
    h1 = sig(a[:, 3 * H :] + po * c1) * np.tanh(c1)
    out, _ = forward("lstm_peep", "cell", q, {})
    assert rel_err(out["h_n"], h1) < 1e-14
    assert rel_err(out["c_n"], c1) < 1e-14


@pytest.mark.parametrize("lbr", [True, False], ids=["lbr1", "lbr0"])
def test_gru_follows_the_formulas(rng: np.random.Generator, lbr: bool) -> None:
    p = make_params(rng, "gru", "cell", batch=5)
    x, h, w_ih, w_hh, b_ih, b_hh = (p[k] for k in ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"))
    clip = 0.6

    def cl(a: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(a, -clip), clip)

    gi = x @ w_ih.T + b_ih
    w_r, w_z, w_n = w_hh[:H], w_hh[H : 2 * H], w_hh[2 * H :]
    b_r, b_z, b_n = b_hh[:H], b_hh[H : 2 * H], b_hh[2 * H :]
    r = sig(cl(gi[:, :H] + h @ w_r.T + b_r))
    z = sig(cl(gi[:, H : 2 * H] + h @ w_z.T + b_z))
    if lbr:
        n = np.tanh(cl(gi[:, 2 * H :] + r * (h @ w_n.T + b_n)))
    else:
        n = np.tanh(cl(gi[:, 2 * H :] + (r * h) @ w_n.T + b_n))
    h1 = (1 - z) * n + z * h
    out, _ = forward("gru_clip", "cell", p, {"clip": clip, "linear_before_reset": lbr})
    assert rel_err(out["h_n"], h1) < 1e-14
    if not lbr:  # and the two formulations really differ
        other, _ = forward("gru", "cell", p, {})
        assert rel_err(other["h_n"], h1) > 1e-3


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_clip_follows_the_formula(rng: np.random.Generator, nonlinearity: str) -> None:
    p = make_params(rng, "rnn_tanh", "cell", batch=5)
    a = p["x"] @ p["w_ih"].T + p["h0"] @ p["w_hh"].T + p["b_ih"] + p["b_hh"]
    a = np.minimum(np.maximum(a, -0.5), 0.5)
    h1 = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    out, _ = forward(f"rnn_{nonlinearity}_clip", "cell", p, {"clip": 0.5})
    assert rel_err(out["h_n"], h1) < 1e-14


def test_clip_gradient_is_zero_at_the_boundary() -> None:
    """The gradient passes only where ``-clip < pre < clip`` (strictly)."""
    x = np.array([[1.0], [-1.0], [0.5]])
    w_ih, w_hh = np.array([[1.0]]), np.array([[0.0]])
    h1, cache = ref.rnn_cell_forward(x, None, w_ih, w_hh, clip=1.0)
    np.testing.assert_array_equal(h1[:, 0], np.tanh([1.0, -1.0, 0.5]))
    grads = ref.rnn_cell_backward(np.ones((3, 1)), cache)
    np.testing.assert_array_equal(grads.dx[:, 0], [0.0, 0.0, 1 - np.tanh(0.5) ** 2])


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("config", list(CONFIGS))
def test_padding_is_never_read(rng: np.random.Generator, config: str) -> None:
    """NaN in ``x`` and ``dy`` beyond each sequence's length changes nothing."""
    p = make_params(rng, config, "seq")
    opts = fixed_clip(config, make_options(config, "seq", "lengths_reverse"))
    outputs, cache = forward(config, "seq", p, opts)
    g = output_grads(rng, outputs)
    grads = backward(config, "seq", g, cache)

    padded = np.arange(T)[:, None] >= LENGTHS[None, :]  # [T, B]
    dirty = dict(p, x=np.where(padded[..., None], np.nan, p["x"]))
    g_dirty = dict(g, y=np.where(padded[..., None], np.nan, g["y"]))
    with np.errstate(all="raise"):
        d_outputs, d_grads = run(config, "seq", dirty, opts, g_dirty)
    assert_same(d_outputs, outputs)
    assert_same(d_grads, grads)
    assert not np.any(outputs["y"][padded])
    assert not np.any(grads["x"][padded])


@pytest.mark.parametrize("config", ["lstm", "lstm_all", "gru_lbr0", "rnn_relu"])
def test_zero_lengths_and_zero_steps(rng: np.random.Generator, config: str) -> None:
    """All lengths 0 (with and without ``T = 0``): the identity on the state."""
    for steps in (0, T):
        p = make_params(rng, config, "seq", steps=steps)
        for reverse in (False, True):
            opts = fixed_clip(config, make_options(config, "seq"))
            opts |= {"lengths": np.zeros(B, dtype=np.int32), "reverse": reverse}
            outputs, cache = forward(config, "seq", p, opts)
            assert not np.any(outputs["y"])
            np.testing.assert_array_equal(outputs["h_n"], p["h0"])
            g = output_grads(rng, outputs)
            grads = backward(config, "seq", g, cache)
            np.testing.assert_array_equal(grads["h0"], g["h_n"])
            if "c_n" in outputs:
                np.testing.assert_array_equal(outputs["c_n"], p["c0"])
                np.testing.assert_array_equal(grads["c0"], g["c_n"])
            assert not np.any(grads["x"])
            for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr", "peepholes"):
                if grads.get(k) is not None:
                    assert grads[k].shape == p[k].shape
                    assert not np.any(grads[k]), k


@pytest.mark.parametrize("config", ["lstm_all", "gru_lbr0", "rnn_relu_clip"])
def test_lengths_with_zero_batch(rng: np.random.Generator, config: str) -> None:
    p = make_params(rng, config, "seq", batch=0)
    opts = fixed_clip(config, make_options(config, "seq", "lengths_reverse"))
    opts["lengths"] = np.zeros(0, dtype=np.int32)
    outputs, cache = forward(config, "seq", p, opts)
    assert outputs["y"].shape == (T, 0, p["w_hh"].shape[1])
    grads = backward(config, "seq", output_grads(rng, outputs), cache)
    for k, v in grads.items():
        if p[k] is not None:
            assert v.shape == p[k].shape and not np.any(v), k


@pytest.mark.parametrize("config", ["lstm", "lstm_all", "gru_lbr0_clip", "rnn_tanh_clip"])
def test_cache_records_lengths_and_reverse(rng: np.random.Generator, config: str) -> None:
    p = make_params(rng, config, "seq")
    _, cache = forward(config, "seq", p, make_options(config, "seq", "plain", clip=1.0))
    assert cache.lengths is None and cache.reverse is False
    opts = make_options(config, "seq", "lengths_reverse", clip=1.0)
    opts["lengths"] = opts["lengths"].astype(np.int32)
    _, cache = forward(config, "seq", p, opts)
    np.testing.assert_array_equal(cache.lengths, LENGTHS)
    assert not np.shares_memory(cache.lengths, opts["lengths"])
    assert cache.reverse is True
    assert cache.training is True


@pytest.mark.parametrize("level", ["cell", "seq"])
@pytest.mark.parametrize("config", ["lstm_all", "lstm_proj_peep", "gru_lbr0_clip"])
def test_float32_in_float32_out(rng: np.random.Generator, config: str, level: str) -> None:
    p64 = make_params(rng, config, level)
    p32 = {k: None if v is None else v.astype(np.float32) for k, v in p64.items()}
    mode = "lengths_reverse" if level == "seq" else "plain"
    opts = fixed_clip(config, make_options(config, level, mode))
    out64, cache64 = forward(config, level, p64, opts)
    out32, cache32 = forward(config, level, p32, opts)
    g64 = output_grads(rng, out64)
    grads64 = backward(config, level, g64, cache64)
    grads32 = backward(config, level, {k: v.astype(np.float32) for k, v in g64.items()}, cache32)
    for k, v in out64.items():
        assert out32[k].dtype == np.float32, k
        assert rel_err(out32[k], v) < 1e-5, k
    for k, v in grads64.items():
        if v is None:
            assert grads32[k] is None, k
        else:
            assert grads32[k].dtype == np.float32, k
            assert rel_err(grads32[k], v) < 1e-5, k


@pytest.mark.parametrize("level", ["cell", "seq"])
@pytest.mark.parametrize("config", ["lstm_all", "gru_lbr0_clip", "rnn_relu_clip"])
def test_outputs_are_fresh(rng: np.random.Generator, config: str, level: str) -> None:
    p = make_params(rng, config, level)
    mode = "lengths_reverse" if level == "seq" else "plain"
    opts = fixed_clip(config, make_options(config, level, mode))
    outputs, cache = forward(config, level, p, opts)
    g = output_grads(rng, outputs)
    grads = backward(config, level, g, cache)
    inputs = [v for v in (*p.values(), *g.values()) if v is not None]
    results = [*outputs.values(), *(v for v in grads.values() if v is not None)]
    for r in results:
        for a in inputs:
            assert not np.shares_memory(r, a)


@pytest.mark.parametrize("level", ["cell", "seq"])
@pytest.mark.parametrize("config", ["lstm_all", "gru_lbr0", "rnn_tanh"])
def test_training_false_cache_is_refused(rng: np.random.Generator, config: str, level: str) -> None:
    p = make_params(rng, config, level)
    opts = fixed_clip(config, make_options(config, level))
    outputs, _ = forward(config, level, p, opts)
    inference, cache = forward(config, level, p, dict(opts, training=False))
    assert_same(inference, outputs)
    with pytest.raises(ValueError, match=r"training=False.*call forward with training=True"):
        backward(config, level, output_grads(rng, outputs), cache)


def test_results_are_named_tuples(rng: np.random.Generator) -> None:
    p = make_params(rng, "lstm_all", "seq")
    out = ref.lstm_forward(
        p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], w_hr=p["w_hr"], peepholes=p["peepholes"]
    )
    assert type(out).__name__ == "LSTMOutput"
    assert out.y.shape == (T, B, P) and out.h_n.shape == (B, P) and out.c_n.shape == (B, H)
    grads = ref.lstm_backward(out.y, None, None, out.cache)
    assert grads._fields == (
        "dx",
        "dh0",
        "dc0",
        "dw_ih",
        "dw_hh",
        "db_ih",
        "db_hh",
        "dw_hr",
        "dpeepholes",
    )
    assert grads.dw_hr.shape == (P, H) and grads.dpeepholes.shape == (3, H)
    assert grads.db_ih is None and grads.db_hh is None
    cell = ref.lstm_cell_forward(p["x"][0], None, None, p["w_ih"], p["w_hh"], w_hr=p["w_hr"])
    cell_grads = ref.lstm_cell_backward(cell.h1, None, cell.cache)
    assert cell_grads._fields[:3] == ("dx", "dh", "dc")
    assert cell_grads.dw_hr.shape == (P, H) and cell_grads.dpeepholes is None
    q = make_params(rng, "gru", "seq")
    gru = ref.gru_forward(q["x"], None, q["w_ih"], q["w_hh"])
    assert ref.gru_backward(gru.y, None, gru.cache)._fields[:2] == ("dx", "dh0")


# --------------------------------------------------------------------------- arguments
def lstm_args(rng: np.random.Generator, steps: int = 5, batch: int = 4, hid: int = 4) -> Params:
    return make_params(rng, "lstm_all", "seq", steps=steps, batch=batch, hid=hid, proj=3)


def call_lstm(p: Params, **kw: Any) -> Any:
    return ref.lstm_forward(
        p["x"],
        p["h0"],
        p["c0"],
        p["w_ih"],
        p["w_hh"],
        p["b_ih"],
        p["b_hh"],
        **{"w_hr": p["w_hr"], "peepholes": p["peepholes"]} | kw,
    )


def test_lengths_errors(rng: np.random.Generator) -> None:
    p = lstm_args(rng)
    with pytest.raises(ValueError, match=r"^lengths must have shape \(B,\) = \(4,\), got \(3,\)$"):
        call_lstm(p, lengths=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"^lengths must have shape \(B,\) = \(4,\), got \(1, 4\)"):
        call_lstm(p, lengths=np.ones((1, 4), dtype=np.int64))
    msg = r"^lengths\[2\] = 7 is out of range \[0, T\] = \[0, 5\]$"
    with pytest.raises(ValueError, match=msg):
        call_lstm(p, lengths=np.array([1, 2, 7, 3]))
    with pytest.raises(ValueError, match=r"^lengths\[0\] = -1 is out of range"):
        call_lstm(p, lengths=np.array([-1, 2, 3, 3], dtype=np.int8))
    for bad in (np.ones(4, dtype=bool), np.ones(4), np.ones(4, dtype=np.float32), [1.0] * 4):
        with pytest.raises(TypeError, match=r"^lengths must have an integer dtype"):
            call_lstm(p, lengths=bad)
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64):
        call_lstm(p, lengths=np.array([5, 0, 1, 2], dtype=dtype))
    q = make_params(rng, "gru", "seq", steps=5, batch=4)
    with pytest.raises(ValueError, match=r"^lengths\[3\] = 6 is out of range"):
        ref.gru_forward(q["x"], None, q["w_ih"], q["w_hh"], lengths=np.array([0, 0, 0, 6]))
    with pytest.raises(TypeError, match=r"^lengths must have an integer dtype"):
        ref.rnn_forward(
            q["x"], None, q["w_ih"][:3], q["w_hh"][:3], lengths=np.zeros(4, dtype=np.bool_)
        )


@pytest.mark.parametrize("config", ["lstm_clip", "gru_clip", "rnn_tanh_clip"])
@pytest.mark.parametrize("level", ["cell", "seq"])
def test_clip_errors(rng: np.random.Generator, config: str, level: str) -> None:
    p = make_params(rng, config, level)
    for bad, shown in ((-1.0, "-1.0"), (0, "0.0"), (0.0, "0.0"), (np.nan, "nan"), (np.inf, "inf")):
        msg = rf"^clip must be a positive finite number or None, got {shown}$"
        with pytest.raises(ValueError, match=msg):
            forward(config, level, p, {"clip": bad})
    for bad in (True, "1.0", [1.0]):
        with pytest.raises(TypeError, match=r"^clip must be a positive finite number or None"):
            forward(config, level, p, {"clip": bad})
    for good in (1, 2.5, np.float32(0.5), np.float64(3.0), np.int64(2)):
        forward(config, level, p, {"clip": good})


def test_projection_and_peephole_errors(rng: np.random.Generator) -> None:
    p = lstm_args(rng)  # H = 4, P = 3
    with pytest.raises(
        ValueError, match=r"^peepholes must have shape \(3, H\) = \(3, 4\), got \(4, 4\)$"
    ):
        call_lstm(p, peepholes=np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"^peepholes must have shape \(3, H\)"):
        call_lstm(p, peepholes=np.zeros(12))
    with pytest.raises(ValueError, match=r"^w_hh must have shape \(4H, P\) = \(16, 2\), got"):
        call_lstm(p, w_hr=np.zeros((2, 4)))
    # Without w_hr, H is read from w_hh's columns (3 here), and w_hh [16, 3] is wrong.
    with pytest.raises(ValueError, match=r"^w_hh must have shape \(4H, H\) = \(12, 3\), got"):
        call_lstm(p, w_hr=None)
    with pytest.raises(ValueError, match=r"^w_hr must be 2-D"):
        call_lstm(p, w_hr=np.zeros(12))
    with pytest.raises(ValueError, match=r"^h0 must have shape \(B, P\) = \(4, 3\), got \(4, 4\)"):
        call_lstm(dict(p, h0=np.zeros((4, 4))))
    with pytest.raises(ValueError, match=r"^c0 must have shape \(B, H\) = \(4, 4\), got \(4, 3\)"):
        call_lstm(dict(p, c0=np.zeros((4, 3))))
    for name in ("w_hr", "peepholes", "w_hh"):
        with pytest.raises(TypeError, match=rf"^{name} has dtype float32, expected float64"):
            call_lstm(dict(p, **{name: p[name].astype(np.float32)}))
    out = call_lstm(p)
    with pytest.raises(ValueError, match=r"^dy must have shape \(T, B, P\) = \(5, 4, 3\)"):
        ref.lstm_backward(np.zeros((5, 4, 4)), None, None, out.cache)
    with pytest.raises(ValueError, match=r"^dh_n must have shape \(B, P\) = \(4, 3\)"):
        ref.lstm_backward(None, np.zeros((4, 4)), None, out.cache)
    with pytest.raises(TypeError, match=r"^dc_n has dtype float32"):
        ref.lstm_backward(None, None, np.zeros((4, 4), dtype=np.float32), out.cache)


def test_flag_and_keyword_errors(rng: np.random.Generator) -> None:
    p = lstm_args(rng)
    for name in ("reverse", "input_forget", "training"):
        with pytest.raises(TypeError, match=rf"^{name} must be a bool, got int"):
            call_lstm(p, **{name: 1})
    q = make_params(rng, "gru", "seq")
    w = (q["w_ih"], q["w_hh"], q["b_ih"], q["b_hh"])
    with pytest.raises(TypeError, match=r"^linear_before_reset must be a bool, got NoneType"):
        ref.gru_forward(q["x"], q["h0"], *w, linear_before_reset=None)
    with pytest.raises(TypeError):  # the options are keyword-only
        ref.gru_forward(q["x"], q["h0"], *w, True)
    with pytest.raises(TypeError):  # cells have no lengths / reverse
        ref.gru_cell_forward(q["x"][0], q["h0"], *w, reverse=True)
    with pytest.raises(TypeError):
        ref.lstm_cell_forward(p["x"][0], None, None, p["w_ih"], p["w_hh"], lengths=[1] * 4)
    with pytest.raises(TypeError, match=r"^w_hh has dtype float32, expected float64"):
        ref.gru_forward(q["x"], q["h0"], q["w_ih"], q["w_hh"].astype(np.float32))
    with pytest.raises(TypeError, match=r"^weights must be floating point"):
        ref.rnn_forward(q["x"], None, q["w_ih"].astype(int), q["w_hh"])
