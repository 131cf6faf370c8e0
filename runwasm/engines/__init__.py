"""Engine adapters: one module per engine behind the interface in `base`.

This package's top level stays import-free: the handler reads BUILTIN on its hot path.
"""

# engine name -> module holding its ADAPTER
BUILTIN = {"wasmtime": "runwasm.engines.wasmtime_inproc"}
