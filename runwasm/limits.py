"""Per-pod limits from annotations: runwasm.io/max-memory, /timeout, /fuel, /sockets.

Parsed without `re` (hot path). Invalid values are errors that name the key.
"""

from __future__ import annotations

from runwasm.annotations import shown
from runwasm.errors import RunwasmError
from runwasm.plan import Limits

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

MAX_MEMORY: Final = "runwasm.io/max-memory"
TIMEOUT: Final = "runwasm.io/timeout"
FUEL: Final = "runwasm.io/fuel"
SOCKETS: Final = "runwasm.io/sockets"
INVOKE: Final = "runwasm.io/invoke"  # a reactor module's export to run after _initialize

# Kubernetes quantity suffixes (binary and decimal); "m" (milli) makes no sense for bytes.
_QUANTITY: Final = {
    "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "": 1,
}
_DURATION: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
_MAX_VALUE: Final = (1 << 63) - 1  # bytes or fuel: what an engine's 64-bit counter holds
_MAX_SECONDS: Final = 100 * 365 * 86400.0


def _what(key: str) -> str:
    return "annotation " if "/" in key else ""


def _split_number(text: str) -> tuple[float, str] | None:
    end = 0
    while end < len(text) and (text[end].isdigit() or text[end] == "."):
        end += 1
    try:
        return float(text[:end]), text[end:]
    except ValueError:
        return None


def parse_quantity(key: str, text: str, *, allow_zero: bool = False) -> int:
    """`64Mi`, `1G`, `1048576` -> bytes."""
    split = _split_number(text.strip())
    if split is None or split[1] not in _QUANTITY or split[0] < 0 or (
            split[0] == 0 and not allow_zero) or split[0] * _QUANTITY[split[1]] > _MAX_VALUE:
        raise RunwasmError(f"invalid {_what(key)}{key}={shown(text)}: expected a quantity "
                           "such as 64Mi, 1Gi or 500M")
    return int(split[0] * _QUANTITY[split[1]])


def parse_duration(key: str, text: str) -> float:
    """`30s`, `500ms`, `2m`, `1h`, `1.5` (seconds) -> seconds."""
    split = _split_number(text.strip())
    if split is None or split[1] not in _DURATION or split[0] <= 0 or (
            split[0] * _DURATION[split[1]] > _MAX_SECONDS):
        raise RunwasmError(f"invalid {_what(key)}{key}={shown(text)}: expected a duration "
                           "such as 30s, 500ms or 2m")
    return split[0] * _DURATION[split[1]]


def parse_count(key: str, text: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or not (
            0 < int(value) <= _MAX_VALUE):
        raise RunwasmError(f"invalid annotation {key}={shown(text)}: expected a positive "
                           "integer")
    return int(value)


def parse_bool(key: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise RunwasmError(f"invalid annotation {key}={shown(text)}: expected true or false")
    return value == "true"


def requested(spec: dict[str, Any]) -> tuple[Limits, list[str], bool]:
    """(limits, the annotation keys that asked for them, sockets asked for)."""
    annotations = spec.get("annotations") or {}
    asked: list[str] = []
    max_memory = timeout = fuel = None
    if MAX_MEMORY in annotations:
        max_memory = parse_quantity(MAX_MEMORY, annotations[MAX_MEMORY])
        asked.append(MAX_MEMORY)
    if TIMEOUT in annotations:
        timeout = parse_duration(TIMEOUT, annotations[TIMEOUT])
        asked.append(TIMEOUT)
    if FUEL in annotations:
        fuel = parse_count(FUEL, annotations[FUEL])
        asked.append(FUEL)
    sockets = parse_bool(SOCKETS, annotations[SOCKETS]) if SOCKETS in annotations else False
    return Limits(max_memory, timeout, fuel), asked, sockets


def cgroup_memory_limit(spec: dict[str, Any]) -> int | None:
    """The container's memory limit from linux.resources, the default max-memory."""
    memory = ((spec.get("linux") or {}).get("resources") or {}).get("memory") or {}
    limit = memory.get("limit")
    return int(limit) if isinstance(limit, int) and limit > 0 else None
