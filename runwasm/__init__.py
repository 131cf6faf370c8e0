"""runwasm: a runc-compatible OCI runtime for WebAssembly containers."""

__version__ = "0.1.0"
