"""JSON through the C accelerator `_json` alone.

The `json` package imports `re` (and with it `enum`), about 15 ms on a small node,
which would double the cost of every `create`. The C scanner and encoder it wraps need
none of that. Falls back to `json` on interpreters without `_json`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Context:
    # The attributes _json.make_scanner reads from json.JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict[str, str] = {}


_WS = " \t\n\r"

_scan: Any = None
_encode: Any = None
try:
    import _json

    _scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
    _encode = _json.make_encoder(
        None, None, _json.encode_basestring_ascii, None,  # type: ignore[arg-type]
        ":", ",", False, False, True,
    )
except (ImportError, AttributeError):  # pragma: no cover - CPython always has it
    pass


def loads(text: str | bytes) -> Any:
    """Parse a JSON document; ValueError on malformed input."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at offset {e.value}") from None
    if text[end:].strip(_WS):
        raise ValueError(f"extra data after JSON at offset {end}")
    return value


def dumps(value: Any) -> str:
    """Compact, ASCII-only JSON."""
    if _encode is None:  # pragma: no cover
        import json

        return json.dumps(value, separators=(",", ":"))
    return "".join(_encode(value, 0))
