"""runwasm.jsonfast: JSON through _json alone, behaving like the json package."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runwasm import jsonfast

SETTINGS = settings(max_examples=200, deadline=None, database=None)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=15,
)
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)


WHITESPACE = st.sampled_from(["", " ", "\n", "\t\r\n "])


@SETTINGS
@given(JSON_VALUES, WHITESPACE, WHITESPACE)
def test_round_trip(value: Any, before: str, after: str) -> None:
    text = jsonfast.dumps(value)
    # compact and ASCII-only, exactly as json.dumps with compact separators
    assert text == json.dumps(value, separators=(",", ":"))
    assert text.isascii()
    assert "\n" not in text
    assert jsonfast.loads(text) == value
    assert jsonfast.loads((before + text + after).encode()) == value
    assert jsonfast.loads(before + text + after) == value


JSONISH = st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNIiy \t\n\\u\x00', max_size=20)


def _normal(value: Any) -> str:
    return json.dumps(value, sort_keys=False)


@SETTINGS
@given(st.one_of(JSONISH, st.text(max_size=20)))
def test_loads_agrees_with_json(text: str) -> None:
    """Same value as json.loads, or a ValueError where json.loads raises one."""
    try:
        want = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            jsonfast.loads(text)
        return
    assert _normal(jsonfast.loads(text)) == _normal(want)


@settings(max_examples=100, deadline=None, database=None)
@given(SCALARS | st.lists(SCALARS, max_size=3),
       st.text(min_size=1, max_size=5).filter(lambda s: s.strip(" \t\n\r")))
def test_trailing_data_is_an_error(value: Any, junk: str) -> None:
    with pytest.raises(ValueError):
        jsonfast.loads(jsonfast.dumps(value) + " " + junk)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "{", "[1,]", '{"a":1,}', "{'a':1}", '{"a" 1}', "tru", "01", "1.",
     '"unterminated', '"\x01"', "[1] [2]", '{"a":1}x', '{"a":1}{}', "1 2", "nul",
     "\ufeff{}", "\x0c1"],
)
def test_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        jsonfast.loads(text)


def test_extra_data_message_has_offset() -> None:
    with pytest.raises(ValueError, match="offset 7"):
        jsonfast.loads('{"a":1} x')


def test_bytes_utf8_and_bom() -> None:
    assert jsonfast.loads('{"é":"ü"}'.encode()) == {"é": "ü"}
    assert jsonfast.loads(b'\xef\xbb\xbf{"a":1}') == {"a": 1}
    # Exactly utf-8-sig: one BOM goes; a second is not whitespace.
    with pytest.raises(ValueError):
        jsonfast.loads(b'\xef\xbb\xbf\xef\xbb\xbf{"a":1}')


def test_bytes_not_utf8_is_value_error() -> None:
    with pytest.raises(ValueError):
        jsonfast.loads(b'{"a":"\xff"}')


def test_non_finite_floats() -> None:
    assert math.isnan(jsonfast.loads("NaN"))
    assert jsonfast.loads("[Infinity,-Infinity]") == [math.inf, -math.inf]
    assert jsonfast.dumps([math.inf, -math.inf]) == "[Infinity,-Infinity]"
    assert jsonfast.dumps(math.nan) == "NaN"


def test_dumps_escapes_to_ascii() -> None:
    assert jsonfast.dumps({"k": 'é"\\\n\x00\U0001f600'}) == (
        '{"k":"\\u00e9\\"\\\\\\n\\u0000\\ud83d\\ude00"}'
    )


def test_dumps_keys_and_order() -> None:
    assert jsonfast.dumps({"b": 1, "a": [True, None, 1.5]}) == '{"b":1,"a":[true,null,1.5]}'
    assert jsonfast.dumps({1: "x"}) == '{"1":"x"}'
    assert jsonfast.dumps((1, 2)) == "[1,2]"


def test_dumps_unserializable_raises_type_error() -> None:
    with pytest.raises(TypeError):
        jsonfast.dumps({"x": object()})


def test_big_config_like_document() -> None:
    doc = {"ociVersion": "1.0.2", "process": {"args": ["/app.wasm", "--x=1"],
           "env": [f"V{i}={i}" for i in range(200)], "cwd": "/"},
           "mounts": [{"destination": f"/m{i}", "options": ["ro"]} for i in range(50)],
           "linux": {"uidMappings": [], "resources": {"memory": {"limit": 2 ** 40}}}}
    assert jsonfast.loads(jsonfast.dumps(doc)) == doc
    assert jsonfast.loads(json.dumps(doc, indent=4)) == doc


# -- input the C scanner cannot report or hold: always a ValueError, one bounded line ----

SCANNER_ERRORS = [
    '{"a": "\\x"}', '{"a" 1}', '["\x01"]', '{"a": "\\ud8"}', '{"a": [1, }', '{1: 2}',
    '[' * 100000, '{"a":' * 50000, "9" * 5000, "[" + "9" * 5000 + "]",
]


@pytest.mark.parametrize("text", SCANNER_ERRORS, ids=range(len(SCANNER_ERRORS)))
def test_scanner_errors_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError) as info:
        jsonfast.loads(text)
    assert type(info.value) is ValueError  # not SystemError, RecursionError, JSONDecodeError
    message = str(info.value)
    assert message and "\n" not in message and len(message) <= 203


def test_scanner_errors_without_json_decoder_loaded() -> None:
    """The C scanner reports errors through json.decoder only once that is imported; in a
    fresh interpreter (the handler's) it is not."""
    import subprocess
    import sys

    repo = str(Path(jsonfast.__file__).resolve().parents[1])
    code = (f"import sys; sys.path.insert(0, {repo!r}); from runwasm import jsonfast\n"
            "for t in ['{\"a\": \"\\\\x\"}', '{\"a\" 1}', '[' * 100000]:\n"
            "    try: jsonfast.loads(t)\n"
            "    except ValueError as e: print(type(e).__name__, e)\n"
            "print('json.decoder' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == ["ValueError Invalid \\escape: line 1 column 8 (char 7)",
                   "ValueError Expecting ':' delimiter: line 1 column 6 (char 5)",
                   "ValueError JSON nested too deeply", "True"]


def test_dumps_too_deep_is_value_error() -> None:
    value: Any = []
    for _ in range(100000):
        value = [value]
    with pytest.raises(ValueError, match="nested too deeply"):
        jsonfast.dumps(value)


@pytest.mark.parametrize("raw", [b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbfx", b"a\xffb",
                                 b"\xef\xbb", "é".encode(), b"\xef\xbb\xbf\xff"])
def test_decode_is_utf8_sig(raw: bytes) -> None:
    assert jsonfast.decode(raw, "replace") == raw.decode("utf-8-sig", "replace")
