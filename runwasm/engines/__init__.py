"""Engine adapters: one module per engine behind the interface in `base`.

This package's top level stays import-free: the handler reads BUILTIN on its hot path.
Built-in adapters are also declared in the `runwasm.engines` entry-point group, like
third-party ones; BUILTIN only spares the handler an entry-point scan for them.
"""

GROUP = "runwasm.engines"

# engine name -> module holding its ADAPTER class
BUILTIN = {
    "wasmtime": "runwasm.engines.wasmtime_inproc",
    "wasmtime-cli": "runwasm.engines.wasmtime_cli",
    "wasmer": "runwasm.engines.wasmer",
    "wasmedge": "runwasm.engines.wasmedge",
}
