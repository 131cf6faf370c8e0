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

# "wasm" means: the node's default engine.
ENGINE_NAMES: Final = ("wasmtime", "wasmedge", "wasmer")
ENGINE_VALUES: Final = (*ENGINE_NAMES, "wasm")
VARIANT_VALUES: Final = ("compat", "compat-smart")
HANDLER_VALUES: Final = ("wasm", "wasm-smart", *ENGINE_NAMES)

# Shown in `runwasm features` so callers can discover what runwasm reads.
FEATURES: Final = {
    ENGINE: "|".join(ENGINE_VALUES),
    VARIANT: "|".join(VARIANT_VALUES),
    HANDLER: "|".join(HANDLER_VALUES),
}
