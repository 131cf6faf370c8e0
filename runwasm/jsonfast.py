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


def decode(raw: bytes, errors: str = "strict") -> str:
    """raw.decode("utf-8-sig", errors) (one leading BOM dropped), without loading that
    codec: the UTF-8 one is always loaded."""
    return (raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8", errors)


def loads(text: str | bytes) -> Any:
    """Parse a JSON document; ValueError, with a one-line message of bounded length, on
    any input the grammar rejects or the parser cannot hold (nesting, huge numbers)."""
    if isinstance(text, bytes):
        text = decode(text)
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at offset {e.value}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except SystemError:
        raise ValueError(_explain(text, start)) from None
    except ValueError as e:  # a JSONDecodeError, or int() refusing a huge number
        raise ValueError(_bounded(str(e))) from None
    if text[end:].strip(_WS):
        raise ValueError(f"extra data after JSON at offset {end}")
    return value


def _explain(text: str, start: int) -> str:
    """Why `text` is not JSON. The C scanner reports its errors through
    json.decoder.JSONDecodeError, and only once that module is loaded: without it, a
    malformed string or object comes out as a SystemError. Load it (on this error path
    only, it costs ~15 ms) and scan again for the message."""
    import json.decoder  # noqa: F401

    try:
        _scan(text, start)
    except StopIteration as e:
        return f"invalid JSON at offset {e.value}"
    except RecursionError:
        return "JSON nested too deeply"
    except (ValueError, SystemError) as e:
        return _bounded(str(e))
    return "invalid JSON"  # pragma: no cover - the first scan failed


def _bounded(message: str, limit: int = 200) -> str:
    line = message.splitlines()[0] if message else "invalid JSON"
    return line if len(line) <= limit else line[:limit] + "..."


def dumps(value: Any) -> str:
    """Compact, ASCII-only JSON; ValueError for a value nested too deeply to encode."""
    if _encode is None:  # pragma: no cover
        import json

        return json.dumps(value, separators=(",", ":"))
    try:
        return "".join(_encode(value, 0))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
