"""Annotation keys runwasm reads, and their accepted values."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

ENGINE: Final = "runwasm.io/engine"
VARIANT: Final = "module.wasm.image/variant"  # crun-compatible
HANDLER: Final = "run.oci.handler"  # crun-compatible

SANDBOX_KEYS: Final = (
    "io.kubernetes.cri.container-type",
    "io.kubernetes.cri-o.ContainerType",
)

# crun's engine names, accepted in run.oci.handler; runwasm.io/engine accepts any
# registered adapter (runwasm.engines) or "wasm", meaning the node's default engine.
ENGINE_NAMES: Final = ("wasmtime", "wasmedge", "wasmer")
DEFAULT_ENGINE: Final = "wasm"
VARIANT_VALUES: Final = ("compat", "compat-smart")
HANDLER_VALUES: Final = ("wasm", "wasm-smart", *ENGINE_NAMES)

# Shown in `runwasm features` so callers can discover what runwasm reads.
FEATURES: Final = {
    ENGINE: "wasm|wasmtime|wasmtime-cli|wasmedge|wasmer|<any runwasm.engines adapter>",
    "runwasm.io/max-memory": "<quantity, e.g. 64Mi>",
    "runwasm.io/timeout": "<duration, e.g. 30s>",
    "runwasm.io/fuel": "<positive integer>",
    "runwasm.io/sockets": "true|false",
    VARIANT: "|".join(VARIANT_VALUES),
    HANDLER: "|".join(HANDLER_VALUES),
}


MAX_SHOWN: Final = 64  # characters of a value echoed in a message


def shown(value: object, *, quote: bool = True, limit: int = MAX_SHOWN) -> str:
    """A value for a one-line message: escaped like repr(), cut after `limit`
    characters (an annotation may be megabytes long)."""
    text = value if isinstance(value, str) else str(value)
    out = repr(text[:limit])[1:-1]
    cut = len(text) > limit or len(out) > limit
    out = out[:limit]
    if quote:
        out = f"'{out}'"
    return f"{out}... ({len(text)} characters)" if cut else out
