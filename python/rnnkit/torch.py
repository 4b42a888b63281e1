"""PyTorch adapter: ``torch.nn.LSTM/GRU/RNN`` whose CPU forward and backward run rnnkit's kernels.

This module is optional: ``import rnnkit`` never imports torch; ``import rnnkit.torch`` does
(and needs it installed).

:class:`LSTM`, :class:`GRU` and :class:`RNN` subclass the corresponding ``torch.nn`` modules:
the same constructor, the same parameters and ``state_dict`` keys (a torch checkpoint loads as
it is), the same ``forward`` signature and return structure (``(output, h_n)``, or
``(output, (h_n, c_n))`` for the LSTM), with batched or unbatched tensors, ``batch_first``,
``PackedSequence`` inputs (sorted or not), ``h0``/``c0`` given or not, ``proj_size``,
``bias=False``, several layers, bidirectional layers and inter-layer dropout. Only the
computation differs: every layer-direction is one ``torch.autograd.Function`` whose forward
calls :func:`rnnkit.lstm_forward` (or ``gru_``/``rnn_forward``) and whose backward calls the
matching BPTT kernel. Tensors reach the kernels as zero-copy NumPy views, or as themselves on
a GPU (non-contiguous ones, such as a ``batch_first`` input, are copied once), and results
come back as tensors that share the kernels' arrays. Everything between layers
(concatenating directions, dropout with torch's random generator, packing) is ordinary torch
code, so autograd composes and parameters receive ``.grad`` exactly as with ``torch.nn``.

* Kernels keep what backward needs only when it is needed: when grad mode is on and some input
  or parameter requires a gradient; otherwise they run in inference mode.
* Parameters are float32 or float64 (another dtype is a ``TypeError``) and inputs have
  their dtype (another is torch's own ``ValueError``, as with ``torch.nn``), all on the CPU
  or all on one CUDA device. CUDA tensors run on rnnkit's CUDA backend (a build with
  ``RNNKIT_CUDA=ON``; see :mod:`rnnkit.cuda`) without copies, on torch's current stream;
  another device, or a CUDA tensor without that backend, is a ``RuntimeError`` naming it.
* Tensors saved for backward are version-checked as usual: modifying an input or a parameter
  in place between forward and backward raises torch's error.
* Double backward is not supported: a gradient taken with ``create_graph=True`` through the
  recurrence raises a ``RuntimeError`` when it is differentiated again.
* A sequence of length 0 is accepted (the initial state passes through), where torch raises.

:class:`LSTMCell`, :class:`GRUCell` and :class:`RNNCell` do the same for ``torch.nn``'s
single-step cells (a decoder's loop, say): one step runs as a sequence of one, whose kernels
read the weights where they are.

:func:`from_torch` wraps an existing ``torch.nn.LSTM/GRU/RNN`` (or ``LSTMCell/GRUCell/RNNCell``)
into the matching class here, sharing its ``Parameter`` objects (no copy).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, cast, overload

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from . import cuda as rnnkit_cuda
from ._functional import (
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "from_torch"]

_SUPPORTED_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------- tensor <-> numpy
def _np(t: Tensor) -> Any:
    """A NumPy view of a CPU tensor (no copy; a lazily negated tensor is resolved first); a
    CUDA tensor stays a tensor, which rnnkit's CUDA backend takes without a copy."""
    t = t.detach().resolve_neg()
    if t.is_cuda:
        return t.contiguous()
    return t.numpy()


def _np_opt(t: Tensor | None) -> Any:
    return None if t is None else _np(t)


def _tensor(a: Any) -> Tensor:
    """The kernel's result as a tensor sharing its memory (CUDA results are tensors already)."""
    return a if isinstance(a, Tensor) else torch.from_numpy(a)


def _weight_arrays(*weights: Tensor | None) -> tuple[Any, ...]:
    """NumPy views (CUDA: tensors) of ``w_ih, w_hh, b_ih, b_hh`` for a kernel call."""
    return tuple(_np_opt(t) for t in weights)


def _grad(a: Any, needed: bool) -> Tensor | None:
    return _tensor(a) if needed and a is not None else None


# --------------------------------------------------------------------------- autograd functions
_NO_DOUBLE_BACKWARD = (
    "rnnkit's recurrent kernels have no double backward: a gradient through an "
    "rnnkit.torch LSTM/GRU/RNN taken with create_graph=True cannot be differentiated again "
    "(use the torch.nn module for higher-order gradients)"
)


class _NoDoubleBackward(torch.autograd.Function):
    """Passes a backward's gradients through unchanged, as tensors in the graph of ``anchor``
    (a tensor that requires grad), so that differentiating them raises instead of silently
    giving zero second-order terms."""

    @staticmethod
    def forward(ctx: Any, anchor: Tensor, *grads: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        return tuple(None if g is None else g.view_as(g) for g in grads)

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:  # type: ignore[override]
        raise RuntimeError(_NO_DOUBLE_BACKWARD)


def _first_order_only(backward: Callable[..., tuple[Tensor | None, ...]]) -> Any:
    """A Function's backward, run without building a graph; under ``create_graph=True`` its
    gradients raise when differentiated. (torch's ``once_differentiable`` guards them only
    when the incoming gradients require grad; a gradient of ``y.sum()`` does not, yet the
    input's gradient depends on the weights, so a penalty on it lost its second-order term
    without a word.)"""

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grad_outputs: Tensor | None) -> tuple[Tensor | None, ...]:
        with torch.no_grad():
            grads = backward(ctx, *grad_outputs)
        if not torch.is_grad_enabled():
            return grads
        anchor = next(
            (
                t
                for t in (*ctx.saved_tensors, *grad_outputs)
                if isinstance(t, Tensor) and t.requires_grad
            ),
            None,
        )
        if anchor is None:
            return grads
        return cast(tuple[Tensor | None, ...], _NoDoubleBackward.apply(anchor, *grads))

    return wrapper


class _LSTMFunction(torch.autograd.Function):
    """One LSTM layer-direction: ``(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) -> (y, h_n, c_n)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        h0: Tensor | None,
        c0: Tensor | None,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        w_hr: Tensor | None,
        lengths: np.ndarray | None,
        batch_sizes: np.ndarray | None,
        reverse: bool,
        training: bool,
        views: tuple[Any, ...] | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        y, h_n, c_n, cache = lstm_forward(
            _np(x),
            _np_opt(h0),
            _np_opt(c0),
            *(views or _weight_arrays(w_ih, w_hh, b_ih, b_hh)),
            training=training,
            lengths=lengths,
            batch_sizes=batch_sizes,
            reverse=reverse,
            w_hr=_np_opt(w_hr),
        )
        ctx.cache = cache if training else None
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        ctx.set_materialize_grads(False)
        return _tensor(y), _tensor(h_n), _tensor(c_n)

    @staticmethod
    @_first_order_only
    def backward(  # type: ignore[override]
        ctx: Any, dy: Tensor | None, dh_n: Tensor | None, dc_n: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        _ = ctx.saved_tensors  # torch's check that nothing was modified in place since forward
        g = lstm_backward(_np_opt(dy), _np_opt(dh_n), _np_opt(dc_n), ctx.cache)
        need = ctx.needs_input_grad
        grads = (g.dx, g.dh0, g.dc0, g.dw_ih, g.dw_hh, g.db_ih, g.db_hh, g.dw_hr)
        return (*(_grad(a, n) for a, n in zip(grads, need, strict=False)), *([None] * 5))


class _GRUFunction(torch.autograd.Function):
    """One GRU layer-direction: ``(x, h0, w_ih, w_hh, b_ih, b_hh) -> (y, h_n)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        h0: Tensor | None,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        lengths: np.ndarray | None,
        batch_sizes: np.ndarray | None,
        reverse: bool,
        training: bool,
        views: tuple[Any, ...] | None,
    ) -> tuple[Tensor, Tensor]:
        y, h_n, cache = gru_forward(
            _np(x),
            _np_opt(h0),
            *(views or _weight_arrays(w_ih, w_hh, b_ih, b_hh)),
            training=training,
            lengths=lengths,
            batch_sizes=batch_sizes,
            reverse=reverse,
        )
        ctx.cache = cache if training else None
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.set_materialize_grads(False)
        return _tensor(y), _tensor(h_n)

    @staticmethod
    @_first_order_only
    def backward(  # type: ignore[override]
        ctx: Any, dy: Tensor | None, dh_n: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        _ = ctx.saved_tensors
        g = gru_backward(_np_opt(dy), _np_opt(dh_n), ctx.cache)
        need = ctx.needs_input_grad
        return (*(_grad(a, n) for a, n in zip(g, need, strict=False)), *([None] * 5))


class _RNNFunction(torch.autograd.Function):
    """One vanilla RNN layer-direction: ``(x, h0, w_ih, w_hh, b_ih, b_hh) -> (y, h_n)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        h0: Tensor | None,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        nonlinearity: str,
        lengths: np.ndarray | None,
        batch_sizes: np.ndarray | None,
        reverse: bool,
        training: bool,
        views: tuple[Any, ...] | None,
    ) -> tuple[Tensor, Tensor]:
        y, h_n, cache = rnn_forward(
            _np(x),
            _np_opt(h0),
            *(views or _weight_arrays(w_ih, w_hh, b_ih, b_hh)),
            nonlinearity=cast(Any, nonlinearity),
            training=training,
            lengths=lengths,
            batch_sizes=batch_sizes,
            reverse=reverse,
        )
        ctx.cache = cache if training else None
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.set_materialize_grads(False)
        return _tensor(y), _tensor(h_n)

    @staticmethod
    @_first_order_only
    def backward(  # type: ignore[override]
        ctx: Any, dy: Tensor | None, dh_n: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        _ = ctx.saved_tensors
        g = rnn_backward(_np_opt(dy), _np_opt(dh_n), ctx.cache)
        need = ctx.needs_input_grad
        return (*(_grad(a, n) for a, n in zip(g, need, strict=False)), *([None] * 6))


# --------------------------------------------------------------------------- shared module code
def _check_placement(
    module: Any,
    named: list[tuple[str, Tensor]],
    dtype: torch.dtype,
    typed: list[tuple[str, Tensor]],
) -> None:
    """``named[0]`` is the input: every other tensor of ``named`` must be on its device, which
    must be the CPU or (with rnnkit's CUDA backend) a GPU; ``dtype`` (the parameters') must be
    float32 or float64, and every tensor of ``typed`` have it. A clear error otherwise."""
    describe, torch_name = module._describe(), type(module).__name__
    device = named[0][1].device
    if device.type == "cuda" and not rnnkit_cuda.cuda_available():
        raise RuntimeError(
            f"{describe} got a CUDA input, but this rnnkit has no usable CUDA backend (build "
            "it with RNNKIT_CUDA=ON pip install .); move the module and its inputs to the CPU "
            "with .cpu()"
        )
    if device.type not in ("cpu", "cuda"):
        raise RuntimeError(
            f"{describe} runs on the CPU and CUDA devices, but input is on device '{device}' "
            "(rnnkit has no kernels for it); move the module and its inputs to the CPU with "
            f".cpu(), or use torch.nn.{torch_name} there"
        )
    for what, t in named[1:]:
        if t.device != device:
            raise RuntimeError(
                f"{what} must be on the device of input ({device}), got '{t.device}'; move "
                "the module and its inputs to one device"
            )
    if dtype not in _SUPPORTED_DTYPES:
        raise TypeError(
            f"{describe} supports float32 and float64 parameters, got {dtype}; convert the "
            "module with .float() or .double()"
        )
    for what, t in typed:
        if t.dtype != dtype:
            raise TypeError(
                f"{what} must have dtype {dtype} (the dtype of the parameters), got {t.dtype}"
            )


def _run_kernel(
    kind: str,
    act: str,
    x: Tensor,
    h0: Tensor | None,
    c0: Tensor | None,
    weights: tuple[Tensor | None, ...],
    lengths: np.ndarray | None,
    batch_sizes: np.ndarray | None,
    reverse: bool,
    weight_views: tuple[Any, ...] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer-direction: ``(y, h_n, c_n or None)``. Through the autograd Function when a
    gradient is wanted (grad mode on and some input requiring one); otherwise the kernel is
    called directly in inference mode (the Function's machinery cost more than a small step:
    half of a 128-unit cell's call). Either way ``weight_views`` (NumPy views of ``w_ih,
    w_hh, b_ih, b_hh``), when the caller keeps them, are used instead of new ones."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    training = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, c0, *weights)
    )
    how = (lengths, batch_sizes, reverse, training, weight_views)
    if training:
        if kind == "lstm":
            y, h, c = _LSTMFunction.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, *how)
            return y, h, c
        if kind == "gru":
            y, h = _GRUFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh, *how)
            return y, h, None
        y, h = _RNNFunction.apply(x, h0, w_ih, w_hh, b_ih, b_hh, act, *how)
        return y, h, None
    args = (_np(x), _np_opt(h0))
    ws = weight_views or _weight_arrays(w_ih, w_hh, b_ih, b_hh)
    opts: dict[str, Any] = {
        "training": False,
        "lengths": lengths,
        "batch_sizes": batch_sizes,
        "reverse": reverse,
    }
    if kind == "lstm":
        out = lstm_forward(*args, _np_opt(c0), *ws, w_hr=_np_opt(w_hr), **opts)
        return _tensor(out.y), _tensor(out.h_n), _tensor(out.c_n)
    if kind == "gru":
        g = gru_forward(*args, *ws, **opts)
        return _tensor(g.y), _tensor(g.h_n), None
    r = rnn_forward(*args, *ws, nonlinearity=cast(Any, act), **opts)
    return _tensor(r.y), _tensor(r.h_n), None


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How the layer inputs are laid out: time-major ``[T, B, *]`` (with ``lengths`` [B] for
    a padded PackedSequence, and ``pad_index``, its packed rows' places), or a
    PackedSequence's own data ``[N, *]`` (``batch_sizes`` [T])."""

    lengths: np.ndarray | None = None
    batch_sizes: np.ndarray | None = None
    pad_index: Tensor | None = None


def _pack_layout(bs: np.ndarray, device: torch.device) -> tuple[Tensor, np.ndarray]:
    """For a PackedSequence's ``batch_sizes`` [T] (a host int64 array): the row of every packed
    entry in the padded time-major ``[T*B]`` layout (sorted batch order), on ``device`` (the
    data's), and the sequence lengths [B] (a host array, as the kernels take them)."""
    max_batch = int(bs[0]) if bs.size else 0
    mask = np.arange(max_batch)[None, :] < bs[:, None]  # [T, B]: step t of sequence b exists
    index = torch.from_numpy(np.flatnonzero(mask)).to(device)  # packed order: t-major, then b
    return index, mask.sum(axis=0)


def _pad(data: Tensor, index: Tensor, steps: int, batch: int) -> Tensor:
    """Packed rows ``data [N, F]`` -> zero-padded time-major ``[T, B, F]`` (differentiable)."""
    padded = data.new_zeros(steps * batch, data.shape[-1]).index_copy(0, index, data)
    return padded.view(steps, batch, data.shape[-1])


def _unpad(padded: Tensor, index: Tensor) -> Tensor:
    """Zero-padded time-major ``[T, B, F]`` -> packed rows ``[N, F]`` (differentiable)."""
    return padded.reshape(-1, padded.shape[-1]).index_select(0, index)


class _KernelRNNBase(torch.nn.RNNBase):
    """What :class:`LSTM`, :class:`GRU` and :class:`RNN` share: argument handling mirroring
    ``torch.nn``'s ``forward`` and the layer stack running rnnkit's kernels."""

    def _describe(self) -> str:
        return f"rnnkit.torch.{type(self).__name__}"

    def _check_tensors(self, input: Tensor, hx: tuple[Tensor, ...]) -> None:
        """CPU or rnnkit's CUDA, float32/float64 only: raise a clear error otherwise."""
        named: list[tuple[str, Tensor]] = [("input", input)]
        named += list(zip(("h_0", "c_0") if len(hx) == 2 else ("hx",), hx, strict=False))
        named += [
            (n, w)
            for n, w in zip(self._flat_weights_names, self._flat_weights, strict=True)
            if isinstance(w, Tensor)
        ]
        # (the input's own dtype is torch's check_input's, with torch's message)
        _check_placement(self, named, cast(Tensor, self._flat_weights[0]).dtype, named[1:])

    def _layer_direction(
        self,
        k: int,
        x: Tensor,
        h0: Tensor | None,
        c0: Tensor | None,
        layout: _Layout,
        reverse: bool,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run layer-direction ``k`` (= layer * D + direction) on ``x`` (``layout``)."""
        n = len(self._all_weights[0])
        w = cast(list[Tensor], self._flat_weights[k * n : (k + 1) * n])
        w_ih, w_hh = w[0], w[1]
        b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
        w_hr = w[-1] if self.proj_size > 0 else None
        kind = {"LSTM": "lstm", "GRU": "gru"}.get(self.mode, "rnn")
        act = "relu" if self.mode == "RNN_RELU" else "tanh"
        return _run_kernel(
            kind,
            act,
            x,
            h0,
            c0,
            (w_ih, w_hh, b_ih, b_hh, w_hr),
            layout.lengths,
            layout.batch_sizes,
            reverse,
        )

    def _stack(
        self, x: Tensor, hx: tuple[Tensor, ...] | None, layout: _Layout
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """All layers on ``x``: time-major ``[T, B, I]``, or a PackedSequence's data as
        ``layout`` says. Returns ``y`` (``[T, B, D*R]``, or the packed ``[N, D*R]``) and the
        final states ``(h_n,)`` or ``(h_n, c_n)``, each ``[L*D, B, *]``."""
        num_dirs = 2 if self.bidirectional else 1
        h_list: list[Tensor] = []
        c_list: list[Tensor] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_dirs):
                k = layer * num_dirs + direction
                h0 = None if hx is None else hx[0][k]
                c0 = None if hx is None or len(hx) < 2 else hx[1][k]
                y, h, c = self._layer_direction(k, layer_input, h0, c0, layout, direction == 1)
                outputs.append(y)
                h_list.append(h)
                if c is not None:
                    c_list.append(c)
            layer_output = outputs[0] if num_dirs == 1 else torch.cat(outputs, dim=-1)
            if self.dropout != 0 and self.training and layer < self.num_layers - 1:
                # as torch.nn: dropout on the layer output (the packed data for a
                # PackedSequence), drawn from torch's generator in the same order
                if layout.pad_index is None:
                    layer_output = torch.nn.functional.dropout(layer_output, self.dropout, True)
                else:
                    steps, batch = layer_output.shape[:2]
                    data = _unpad(layer_output, layout.pad_index)
                    data = torch.nn.functional.dropout(data, self.dropout, True)
                    layer_output = _pad(data, layout.pad_index, steps, batch)
            layer_input = layer_output
        states = (torch.stack(h_list),) + ((torch.stack(c_list),) if c_list else ())
        return layer_input, states

    def _kernel_forward(
        self, input: Tensor | PackedSequence, hx: Tensor | tuple[Tensor, Tensor] | None
    ) -> tuple[Any, Any]:
        """``torch.nn``'s forward with the layer computation replaced by rnnkit's kernels."""
        self._update_flat_weights()
        is_lstm = self.mode == "LSTM"
        name = type(self).__name__
        states: tuple[Tensor, ...] | None
        if hx is None:
            states = None
        elif is_lstm:
            if not isinstance(hx, tuple | list) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0) of tensors or None")
            states = (hx[0], hx[1])
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: hx must be a tensor or None, got {type(hx).__name__}")
            states = (hx,)

        def as_hx(s: tuple[Tensor, ...]) -> Any:
            return s if is_lstm else s[0]

        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self._check_tensors(data, states or ())
            if states is None:
                self.check_input(data, batch_sizes)
            else:
                self.check_forward_args(data, as_hx(states), batch_sizes)
                if sorted_indices is not None:
                    states = tuple(s.index_select(1, sorted_indices) for s in states)
            sizes = batch_sizes.detach().cpu().numpy().astype(np.int64)
            if data.device.type == "cpu":
                # the kernels take the packed rows as they are: no [T, B, *] padding
                y, out_states = self._stack(data, states, _Layout(batch_sizes=sizes))
            else:
                # the CUDA backend takes padded x [T, B, I] and lengths
                index, lengths = _pack_layout(sizes, data.device)
                x = _pad(data, index, len(sizes), len(lengths))
                y, out_states = self._stack(x, states, _Layout(lengths=lengths, pad_index=index))
                y = _unpad(y, index)
            packed = PackedSequence(y, batch_sizes, sorted_indices, unsorted_indices)
            if unsorted_indices is not None:
                out_states = tuple(s.index_select(1, unsorted_indices) for s in out_states)
            return packed, as_hx(out_states)

        if not isinstance(input, Tensor):
            raise TypeError(
                f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}"
            )
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        is_batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
        self._check_tensors(input, states or ())
        if states is None:
            self.check_input(input, None)
        else:
            want = 3 if is_batched else 2
            if any(s.dim() != want for s in states):
                got = ", ".join(f"{s.dim()}-D" for s in states)
                raise RuntimeError(
                    f"For {'batched 3-D' if is_batched else 'unbatched 2-D'} input, hx should "
                    f"also be {want}-D but got ({got}) tensors"
                )
            if not is_batched:
                states = tuple(s.unsqueeze(1) for s in states)
            self.check_forward_args(input, as_hx(states), None)
        x = input.transpose(0, 1) if self.batch_first else input
        y, out_states = self._stack(x, states, _Layout())
        output = y.transpose(0, 1) if self.batch_first else y
        if not is_batched:
            output = output.squeeze(batch_dim)
            out_states = tuple(s.squeeze(1) for s in out_states)
        return output, as_hx(out_states)


# --------------------------------------------------------------------------- public modules
class LSTM(_KernelRNNBase, torch.nn.LSTM):
    """``torch.nn.LSTM`` (same constructor, parameters, ``state_dict``, ``forward``) whose CPU
    forward and backward run rnnkit's kernels.

    ``forward(input, hx=None)`` takes a ``[T, B, I]`` tensor (``[B, T, I]`` with
    ``batch_first``), an unbatched ``[T, I]`` tensor or a ``PackedSequence``, and ``hx`` a
    tuple ``(h_0 [L*D, B, R], c_0 [L*D, B, H])`` or None; it returns
    ``(output, (h_n, c_n))`` exactly as ``torch.nn.LSTM`` does (R = ``proj_size`` or H).
    """

    def forward(  # type: ignore[override]
        self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Any, tuple[Tensor, Tensor]]:
        return self._kernel_forward(input, hx)


class GRU(_KernelRNNBase, torch.nn.GRU):
    """``torch.nn.GRU`` whose CPU forward and backward run rnnkit's kernels.

    ``forward(input, hx=None)`` returns ``(output, h_n)`` exactly as ``torch.nn.GRU`` does.
    """

    def forward(  # type: ignore[override]
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Any, Tensor]:
        return self._kernel_forward(input, hx)


class RNN(_KernelRNNBase, torch.nn.RNN):
    """``torch.nn.RNN`` (``nonlinearity`` ``"tanh"`` or ``"relu"``) whose CPU forward and
    backward run rnnkit's kernels.

    ``forward(input, hx=None)`` returns ``(output, h_n)`` exactly as ``torch.nn.RNN`` does.
    """

    def forward(  # type: ignore[override]
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Any, Tensor]:
        return self._kernel_forward(input, hx)


# --------------------------------------------------------------------------- single steps
class _KernelCellBase(torch.nn.RNNCellBase):
    """What :class:`LSTMCell`, :class:`GRUCell` and :class:`RNNCell` share: ``torch.nn``'s
    argument handling, and one step as a sequence of one (rnnkit's one-step kernels read the
    weights in place: a cell call costs no packing)."""

    _kind = ""

    def _describe(self) -> str:
        return f"rnnkit.torch.{type(self).__name__}"

    def _weight_views(self, weights: tuple[Tensor | None, ...]) -> tuple[Any, ...]:
        """NumPy views of the parameters, kept while they are the same memory (an in-place
        update shows through a view; a parameter replaced, given new storage or a new layout
        (a transposed view of the same memory) is seen by its address, shape and strides):
        making them cost a fifth of a 128-unit step."""
        key = tuple(
            None if t is None else (t.data_ptr(), t.shape, t.stride(), t.dtype, t.is_neg())
            for t in weights
        )
        cached = self.__dict__.get("_views")
        if cached is not None and cached[0] == key:
            return cast(tuple[Any, ...], cached[1])
        views = _weight_arrays(*weights)
        self.__dict__["_views"] = (key, views)
        return views

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_views", None)  # NumPy views of the parameters: rebuilt on use
        return state

    def _check(self, tensors: list[tuple[str, Tensor]]) -> None:
        """Parameters float32/float64, the tensors of their dtype, all on one device that
        rnnkit runs on: a clear error otherwise (as the sequence modules)."""
        weights = [("weight_ih", self.weight_ih), ("weight_hh", self.weight_hh)]
        if self.bias:
            weights += [("bias_ih", self.bias_ih), ("bias_hh", self.bias_hh)]
        named = tensors + weights
        _check_placement(self, named, self.weight_ih.dtype, tensors + weights[1:])

    def _step(self, input: Tensor, hx: tuple[Tensor, ...] | None) -> tuple[Tensor, ...]:
        """``(h1,)`` or ``(h1, c1)`` for ``input [B, I]`` or ``[I]``, as torch's cells. (Kept
        lean: at 128 units the checks cost as much as the step.)"""
        cls = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{cls}: input must be a Tensor, got {type(input).__name__}")
        dim = input.dim()
        if dim not in (1, 2):
            raise ValueError(f"{cls}: Expected input to be 1D or 2D, got {dim}D instead")
        states: tuple[Tensor, ...] = () if hx is None else tuple(hx)
        for idx, value in enumerate(states):
            if not isinstance(value, Tensor):
                raise TypeError(f"{cls}: hx must be tensors, got {type(value).__name__}")
            if value.dim() not in (1, 2):
                what = f"hx[{idx}]" if len(states) > 1 else "hidden"
                raise ValueError(
                    f"{cls}: Expected {what} to be 1D or 2D, got {value.dim()}D instead"
                )
            if value.dim() != dim:
                raise RuntimeError(
                    f"For {'batched 2-D' if dim == 2 else 'unbatched 1-D'} input, hx should "
                    f"also be {dim}-D but got {value.dim()}-D tensor"
                )
        if dim == 1:
            x = input.unsqueeze(0)
            states = tuple(h.unsqueeze(0) for h in states)
        else:
            x = input
        rows, width = x.shape
        # torch's own shape checks (its messages, its RuntimeError)
        if width != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {width} expected {self.input_size}"
            )
        for idx, h in enumerate(states):
            if h.shape[0] != rows:
                raise RuntimeError(
                    f"Input batch size {rows} doesn't match hidden{idx} batch size {h.shape[0]}"
                )
            if h.shape[1] != self.hidden_size:
                raise RuntimeError(
                    f"hidden{idx} has inconsistent hidden_size: got {h.shape[1]}, expected "
                    f"{self.hidden_size}"
                )
        params = self._parameters
        w_ih, w_hh, b_ih, b_hh = (
            params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        dtype, device = cast(Tensor, w_ih).dtype, x.device
        same = device.type == "cpu" and dtype in _SUPPORTED_DTYPES
        if same:
            for t in (x, *states, w_hh, b_ih, b_hh):
                if t is not None and (t.dtype != dtype or t.device != device):
                    same = False
                    break
        if not same:  # the precise error (or a CUDA call, which it lets through)
            named = [("input", x)] + [
                (f"hx[{i}]" if len(states) > 1 else "hx", h) for i, h in enumerate(states)
            ]
            self._check(named)
        act = getattr(self, "nonlinearity", "tanh")
        if act not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {act}")
        h0 = states[0] if states else None
        c0 = states[1] if len(states) > 1 else None
        w = (w_ih, w_hh, b_ih, b_hh, None)
        views = self._weight_views(w[:4]) if device.type == "cpu" else None
        # [1, B, I]: one step, as a sequence of one
        _, h, c = _run_kernel(self._kind, act, x.unsqueeze(0), h0, c0, w, None, None, False, views)
        out = (h,) if c is None else (h, c)
        return out if dim == 2 else tuple(t.squeeze(0) for t in out)


class LSTMCell(_KernelCellBase, torch.nn.LSTMCell):
    """``torch.nn.LSTMCell`` (same constructor, parameters, ``state_dict``, ``forward``) whose
    CPU step and its backward run rnnkit's kernels: ``forward(input, hx=None)`` takes
    ``input [B, I]`` (or ``[I]``) and ``hx = (h [B, H], c [B, H])`` or None and returns
    ``(h1, c1)``."""

    _kind = "lstm"

    def forward(  # type: ignore[override]
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise TypeError("LSTMCell: hx must be a tuple (h, c) of tensors or None")
        h, c = self._step(input, None if hx is None else (hx[0], hx[1]))
        return h, c


class _OneStateCellBase(_KernelCellBase):
    """The cells whose state is ``h`` alone: ``forward(input, hx=None)`` returns ``h1``."""

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return self._step(input, None if hx is None else (hx,))[0]


class GRUCell(_OneStateCellBase, torch.nn.GRUCell):
    """``torch.nn.GRUCell`` whose CPU step and its backward run rnnkit's kernels:
    ``forward(input, hx=None)`` returns ``h1``."""

    _kind = "gru"


class RNNCell(_OneStateCellBase, torch.nn.RNNCell):
    """``torch.nn.RNNCell`` (``nonlinearity`` ``"tanh"`` or ``"relu"``) whose CPU step and its
    backward run rnnkit's kernels: ``forward(input, hx=None)`` returns ``h1``."""

    _kind = "rnn"


@overload
def from_torch(module: torch.nn.LSTM) -> LSTM: ...
@overload
def from_torch(module: torch.nn.GRU) -> GRU: ...
@overload
def from_torch(module: torch.nn.RNN) -> RNN: ...
@overload
def from_torch(module: torch.nn.LSTMCell) -> LSTMCell: ...
@overload
def from_torch(module: torch.nn.GRUCell) -> GRUCell: ...
@overload
def from_torch(module: torch.nn.RNNCell) -> RNNCell: ...
def from_torch(module: Any) -> Any:
    """Wrap a ``torch.nn.LSTM``, ``GRU``, ``RNN``, ``LSTMCell``, ``GRUCell`` or ``RNNCell`` into
    the matching rnnkit module.

    The result shares ``module``'s ``Parameter`` objects (nothing is copied: an in-place change
    or an optimizer step on one is seen by the other, and gradients accumulate in the same
    ``.grad``) and starts in the same train/eval mode; its configuration is a copy.
    """
    if isinstance(module, torch.nn.LSTMCell | torch.nn.GRUCell | torch.nn.RNNCell):
        # device "meta": placeholders only, replaced by module's parameters below
        kw: dict[str, Any] = {
            "bias": module.bias,
            "device": "meta",
            "dtype": module.weight_ih.dtype,
        }
        cell: _KernelCellBase
        if isinstance(module, torch.nn.LSTMCell):
            cell = LSTMCell(module.input_size, module.hidden_size, **kw)
        elif isinstance(module, torch.nn.GRUCell):
            cell = GRUCell(module.input_size, module.hidden_size, **kw)
        else:
            cell = RNNCell(
                module.input_size, module.hidden_size, nonlinearity=module.nonlinearity, **kw
            )
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(cell, name, getattr(module, name))
        cell.train(module.training)
        return cell
    return _from_torch_rnn(module)


def _from_torch_rnn(module: torch.nn.LSTM | torch.nn.GRU | torch.nn.RNN) -> LSTM | GRU | RNN:
    """:func:`from_torch` for the sequence modules."""
    if not isinstance(module, torch.nn.LSTM | torch.nn.GRU | torch.nn.RNN):
        raise TypeError(
            "from_torch expects a torch.nn.LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell, got "
            f"{type(module).__name__}"
        )
    common: dict[str, Any] = {
        "input_size": module.input_size,
        "hidden_size": module.hidden_size,
        "num_layers": module.num_layers,
        "bias": module.bias,
        "batch_first": module.batch_first,
        "bidirectional": module.bidirectional,
        "device": "meta",  # placeholders only: replaced by module's parameters below
        "dtype": cast(Tensor, module._flat_weights[0]).dtype,
    }
    wrapped: LSTM | GRU | RNN
    if isinstance(module, torch.nn.LSTM):
        wrapped = LSTM(proj_size=module.proj_size, **common)
    elif isinstance(module, torch.nn.GRU):
        wrapped = GRU(**common)
    else:
        wrapped = RNN(nonlinearity=module.nonlinearity, **common)
    wrapped.dropout = module.dropout  # set after construction: no repeated 1-layer warning
    for name in module._flat_weights_names:
        setattr(wrapped, name, getattr(module, name))
    wrapped._init_flat_weights()
    wrapped.train(module.training)
    return wrapped
