"""Property tests: mutated config.json, annotation values and modules, in-process against
create.prepare. Whatever the input, runwasm gives a decision or one bounded RunwasmError
line (never another exception), within a time limit, and the bundle is as it was
(hostile_support.attempt checks all of it)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hostile_support import SMART, attempt, runc_spec, wasm, write_bundle
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from runwasm.config import NodeConfig
from runwasm.errors import RunwasmError

BASE = runc_spec()
HELLO = wasm()
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Strings that hurt: NUL, lone surrogates, control characters, non-ASCII digits, long runs.
NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="\0\ud800\udcff\n\r\t =/.:\u0661\u017f\u212aKk9", max_size=20),
    st.sampled_from(["", " ", "/", "..", "/app.wasm", "compat", "compat-smart", "wasm",
                     "wasmtime", "wasmer", "wasmedge", "true", "64Mi", "30s", "1",
                     "9" * 5000, "x" * (1 << 16), "/a" * 20000, "/.." * 3000 + "/app.wasm",
                     "/proc/self/exe"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63) |
    st.floats(allow_nan=False) | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NASTY_TEXT, inner, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (keys and list indexes)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


PATHS = [p for p in _paths(BASE) if p]
# Keys runc's decoder would fold onto a field, beside the real ones.
CASE_KEYS = st.sampled_from(["Process", "ROOT", "Mounts", "Annotations", "proce\u017fs", "Linux"])


def _mutate(spec: dict[str, Any], path: tuple[Any, ...], action: str, value: Any,
            key: str) -> None:
    parent: Any = spec
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    elif isinstance(parent[last], list):
        parent[last].append(value)
    else:
        parent[last] = value


def _one(spec: dict[str, Any] | bytes, config: NodeConfig | None = None,
         module: bytes = HELLO) -> None:
    with tempfile.TemporaryDirectory() as directory:
        bundle = write_bundle(Path(directory), spec, module)
        result = attempt(bundle) if config is None else attempt(bundle, config)
        if currently_in_test_context():  # --hypothesis-show-statistics: which outcomes
            if isinstance(result, RunwasmError):
                event("refused: " + result.message.replace(str(bundle), "B").split(": ")[
                    min(1, result.message.count(": ") - 1)][:40])
            else:
                event(f"accepted: {'wasm' if result.wasm else 'linux'}")


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(PATHS),
                          st.sampled_from(["replace", "delete", "add"]),
                          JSON_VALUES, NASTY_TEXT | CASE_KEYS), min_size=1, max_size=4),
       st.booleans())
def test_mutated_spec(changes: list[tuple[tuple[Any, ...], str, Any, str]],
                      smart: bool) -> None:
    spec = copy.deepcopy(BASE)
    for path, action, value, key in changes:
        try:
            _mutate(spec, path, action, value, key)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the path
    _one(spec, SMART if smart else None)


@SETTINGS
@given(st.data())
def test_mutated_bytes(data: st.DataObject) -> None:
    raw = bytearray(json.dumps(BASE, indent=1).encode())
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(raw)))
        how = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        byte = data.draw(st.integers(0, 255))
        if how == "flip" and at < len(raw):
            raw[at] = byte
        elif how == "insert":
            raw[at:at] = bytes([byte]) * data.draw(st.integers(1, 3))
        elif how == "delete":
            del raw[at:at + data.draw(st.integers(1, 8))]
        else:
            del raw[at:]
    _one(bytes(raw))


RUNWASM_KEYS = ["runwasm.io/engine", "module.wasm.image/variant", "run.oci.handler",
                "runwasm.io/max-memory", "runwasm.io/timeout", "runwasm.io/fuel",
                "runwasm.io/sockets", "runwasm.io/invoke", "io.kubernetes.cri.container-type",
                "platform-runtime-path.crio.io"]


@SETTINGS
@given(st.dictionaries(st.sampled_from(RUNWASM_KEYS), NASTY_TEXT, min_size=1, max_size=5),
       st.booleans())
def test_annotation_values(values: dict[str, str], smart: bool) -> None:
    spec = copy.deepcopy(BASE)
    spec["annotations"].update(values)
    _one(spec, SMART if smart else None)


@SETTINGS
@given(st.data())
def test_mutated_module(data: st.DataObject) -> None:
    module = bytearray(HELLO)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(module)))
        how = data.draw(st.sampled_from(["flip", "insert", "truncate"]))
        byte = data.draw(st.integers(0, 255))
        if how == "flip" and at < len(module):
            module[at] = byte
        elif how == "insert":
            module[at:at] = bytes([byte])
        else:
            del module[at:]
    _one(BASE, None, bytes(module))


@pytest.mark.parametrize("size", [0, 1, 1 << 20])
def test_annotation_of_any_size_everywhere(size: int) -> None:
    for key in RUNWASM_KEYS:
        spec = copy.deepcopy(BASE)
        spec["annotations"][key] = "7" * size
        _one(spec)
