"""python/rnnkit/_core.pyi matches the compiled module rnnkit._core.

mypy's stubtest cannot check the extension's functions (pybind11 builtins have no
``__text_signature__``, so it skips them). This test reads the signature line pybind11 writes
at the top of every docstring instead and compares it with the stub, parsed with ``ast``:
the same names, the same parameters (name, positional or keyword-only, default), properties
where the extension has properties (read-only or not), static methods where it has them, and
``None`` returned exactly where the extension returns ``None``. The stub's own types may be
narrower than pybind11's (``NDArray[np.int32]`` for ``object``); those are not compared.

With mypy installed, ``python -m mypy.stubtest rnnkit._core`` also passes once two kinds of
unrepresentable difference are allowlisted: the pybind11 metaclass of every class, and the
``__init__`` of the classes that have no constructor.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rnnkit
from rnnkit import _core

STUB = Path(rnnkit.__file__).with_name("_core.pyi")

# Names the stub defines for typing only: aliases and the interface of the backend modules.
STUB_ONLY = {"_Array", "_Opt", "_Nonlinearity", "_Backend"}
# Backend submodules, checked against the stub's _Backend class. _cuda exists only in a
# RNNKIT_CUDA=ON build; device_count is defined on _cuda alone.
BACKENDS = ("_cuda_host", "_cuda")
BACKEND_ONLY = {"device_count": "_cuda"}
# Dunder members the stub must mirror (other dunders come from pybind11 or object).
DUNDERS = {"__init__", "__enter__", "__exit__", "__len__", "__cuda_array_interface__"}

Param = tuple[str, str, "str | None"]  # (name, kind, default as repr of its value)


def _split(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes."""
    parts: list[str] = []
    depth, quote, current = 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _default(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return repr(ast.literal_eval(text))
    except ValueError:
        return text


def runtime_signature(obj: Any) -> tuple[list[Param], str]:
    """(parameters, return annotation) of pybind11's first docstring line, without self."""
    line = (obj.__doc__ or "").strip().splitlines()[0]
    match = re.fullmatch(r"\w*\((.*)\)\s*->\s*(.*)", line)
    assert match, f"no pybind11 signature in {line!r}"
    params: list[Param] = []
    keyword_only = False
    for part in _split(match.group(1)):
        if part == "*":
            keyword_only = True
            continue
        name, _, rest = part.partition(":")
        name = name.strip()
        if name.startswith("*"):
            params.append((name, "var", None))
            continue
        default = rest.split("=", 1)[1].strip() if "=" in rest else None
        # pybind11 names an argument the C++ code left unnamed argN: it cannot be passed by
        # keyword, so the stub must make it positional-only (its name is then free).
        if keyword_only:
            kind = "keyword"
        elif re.fullmatch(r"arg\d+", name):
            kind, name = "positional", "_"
        else:
            kind = "either"
        params.append((name, kind, _default(default)))
    if params and params[0][0] == "self":
        params = params[1:]
    return params, match.group(2).strip()


def stub_signature(node: ast.FunctionDef, method: bool) -> tuple[list[Param], str]:
    args = node.args
    positional = [(a, "positional") for a in args.posonlyargs] + [(a, "either") for a in args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    params: list[Param] = []
    for (arg, kind), default in zip(positional, defaults, strict=True):
        name = "_" if kind == "positional" else arg.arg
        params.append((name, kind, _default(ast.unparse(default) if default else None)))
    if args.vararg:
        params.append(("*" + args.vararg.arg, "var", None))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(
            (arg.arg, "keyword", _default(ast.unparse(kw_default) if kw_default else None))
        )
    if method:
        params = params[1:]
    return params, ast.unparse(node.returns) if node.returns else ""


def _definitions(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    found: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            found[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node
    return found


def _decorators(node: ast.FunctionDef) -> set[str]:
    return {ast.unparse(d) for d in node.decorator_list}


STUB_DEFS = _definitions(ast.parse(STUB.read_text(encoding="utf-8")).body)


def _compare(where: str, runtime: Any, node: ast.stmt, method: bool) -> list[str]:
    if not isinstance(node, ast.FunctionDef):
        return [f"{where}: a function at runtime, not in the stub"]
    params, returns = runtime_signature(runtime)
    stub_params, stub_returns = stub_signature(node, method)
    problems = []
    if params != stub_params:
        problems.append(f"{where}: runtime parameters {params}, stub {stub_params}")
    if (returns == "None") != (stub_returns == "None"):
        problems.append(f"{where}: runtime returns {returns}, stub {stub_returns}")
    return problems


def _compare_class(name: str, cls: type, node: ast.ClassDef) -> list[str]:
    members = {
        key: value
        for key, value in vars(cls).items()
        if (not key.startswith("__") or key in DUNDERS) and key != "_pybind11_conduit_v1_"
    }
    # A class without a pybind11 constructor inherits an __init__ that raises TypeError; the
    # stub declares none (nothing can describe "not callable").
    init = members.get("__init__")
    if init is not None and not (init.__doc__ or "").startswith("__init__("):
        del members["__init__"]
    stub_members = _definitions(node.body)
    problems = [
        f"{name}.{key}: in {'the stub only' if key in stub_members else 'the runtime only'}"
        for key in sorted(set(members) ^ set(stub_members))
    ]
    for key in sorted(set(members) & set(stub_members)):
        value, stub = members[key], stub_members[key]
        where = f"{name}.{key}"
        if isinstance(value, property):
            if isinstance(stub, ast.FunctionDef):
                if "property" not in _decorators(stub):
                    problems.append(f"{where}: a property at runtime, a method in the stub")
                elif value.fset is not None:
                    problems.append(f"{where}: writable at runtime, read-only in the stub")
            elif value.fset is None:
                problems.append(f"{where}: read-only at runtime, writable in the stub")
        elif isinstance(value, staticmethod):
            if not isinstance(stub, ast.FunctionDef) or "staticmethod" not in _decorators(stub):
                problems.append(f"{where}: a staticmethod at runtime, not in the stub")
            else:
                problems += _compare(where, value.__func__, stub, method=False)
        else:
            problems += _compare(where, value, stub, method=True)
    return problems


def _compare_backend(name: str, module: ModuleType) -> list[str]:
    node = STUB_DEFS["_Backend"]
    assert isinstance(node, ast.ClassDef)
    stub_members = _definitions(node.body)
    runtime = {key for key in vars(module) if not key.startswith("__")}
    expected = {key for key in stub_members if BACKEND_ONLY.get(key, name) == name}
    problems = [
        f"{name}.{key}: in {'the stub only' if key in expected else 'the runtime only'}"
        for key in sorted(runtime ^ expected)
    ]
    for key in sorted(runtime & expected):
        value, stub = getattr(module, key), stub_members[key]
        if callable(value):
            problems += _compare(f"{name}.{key}", value, stub, method=True)
        elif not isinstance(stub, ast.AnnAssign):
            problems.append(f"{name}.{key}: an attribute at runtime, not in the stub")
    return problems


def test_stub_names_match_the_extension() -> None:
    runtime = {name for name in vars(_core) if not name.startswith("__") and name not in BACKENDS}
    stub = set(STUB_DEFS) - STUB_ONLY - set(BACKENDS)
    assert sorted(runtime - stub) == [], "in rnnkit._core but not in _core.pyi"
    assert sorted(stub - runtime) == [], "in _core.pyi but not in rnnkit._core"
    assert set(STUB_ONLY).isdisjoint(vars(_core))


@pytest.mark.parametrize(
    "name", sorted(n for n in vars(_core) if not n.startswith("__") and n not in BACKENDS)
)
def test_stub_signatures_match_the_extension(name: str) -> None:
    runtime, node = getattr(_core, name), STUB_DEFS[name]
    if inspect.isclass(runtime):
        assert isinstance(node, ast.ClassDef), f"{name}: a class at runtime, not in the stub"
        problems = _compare_class(name, runtime, node)
    else:
        problems = _compare(name, runtime, node, method=False)
    assert problems == []


@pytest.mark.parametrize("name", BACKENDS)
def test_stub_backend_matches_the_extension(name: str) -> None:
    module = getattr(_core, name, None)
    if module is None:
        assert name == "_cuda"
        pytest.skip("rnnkit was built without RNNKIT_CUDA")
    node = STUB_DEFS.get(name)
    assert isinstance(node, ast.AnnAssign) or name == "_cuda"
    assert _compare_backend(name, module) == []


def test_the_check_sees_a_drift() -> None:
    """The comparison is not vacuous: a renamed argument, a lost keyword-only marker, a
    changed default and a positional-only argument given a keyword are all reported."""
    runtime = _core.lstm_forward
    stub = STUB_DEFS["lstm_forward"]
    assert isinstance(stub, ast.FunctionDef)
    assert _compare("lstm_forward", runtime, stub, method=False) == []

    renamed = copy.deepcopy(stub)
    renamed.args.args[0].arg = "inputs"
    not_keyword_only = copy.deepcopy(stub)
    not_keyword_only.args.args.append(not_keyword_only.args.kwonlyargs.pop(0))
    default = not_keyword_only.args.kw_defaults.pop(0)
    assert default is not None
    not_keyword_only.args.defaults.append(default)
    new_default = copy.deepcopy(stub)
    new_default.args.kw_defaults[0] = ast.Constant(False)
    for changed in (renamed, not_keyword_only, new_default):
        assert _compare("lstm_forward", runtime, changed, method=False) != []

    size = ast.parse("def size(self, n: int) -> int: ...").body[0]
    assert isinstance(size, ast.FunctionDef)
    assert _compare("size", _core._NgramCounts.size, size, method=True) != []
