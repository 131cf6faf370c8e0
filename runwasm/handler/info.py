"""`--version` and `features`, which CRI-O asks of every handler at start-up, and the
`--help` an operator reads first."""

from __future__ import annotations

import subprocess
import sys

from runwasm import __version__, jsonfast
from runwasm.annotations import FEATURES
from runwasm.errors import RunwasmError
from runwasm.handler import delegate as delegates


def version(delegate: str) -> None:
    """runwasm's version line, then the delegate's own lines (by exec)."""
    sys.stdout.write(f"runwasm version {__version__}\n")
    sys.stdout.flush()
    delegates.execute(delegate, ["--version"])


def features(delegate: str, global_args: list[str]) -> int:
    """The delegate's runtime-spec features JSON plus runwasm's annotation keys."""
    result = subprocess.run([delegate, *global_args, "features"], stdout=subprocess.PIPE,
                            check=False)
    if result.returncode != 0:
        return result.returncode
    try:
        data = jsonfast.loads(result.stdout)
    except ValueError as e:
        raise RunwasmError(f"features: cannot parse {delegate} features: {e}") from None
    annotations = data.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    annotations.update(FEATURES)
    annotations["io.github.runwasm.version"] = __version__
    data["annotations"] = annotations
    import json  # pretty output like runc's; off the hot path

    sys.stdout.write(json.dumps(data, indent=4) + "\n")
    return 0


USAGE = """\
runwasm {version}: a runc-compatible OCI runtime that runs WebAssembly containers on a Wasm
engine (wasmtime, wasmtime-cli, wasmer, wasmedge) inside runc's isolation, and hands every
other container to runc unchanged. CRI-O, podman, containerd's runc shim and people call it
exactly as they call runc: every runc verb and global option below works.

Admin verbs (each has --help):
  runwasm engines [--json]         the Wasm engines: installed or not, version, capabilities
  runwasm doctor [--json]          check this node: python, config, runc, engines, cache, CRI-O
  runwasm install crio|containerd  write the CRI-O drop-in or containerd runtime (idempotent)
  runwasm cache ls|prune|clear     the precompiled-module cache
  runwasm precompile PATH...       compile modules into the cache ahead of time

Pod annotations (a container is Wasm when one says so; see man runwasm):
  module.wasm.image/variant=compat|compat-smart    Wasm / sniff the entrypoint (Linux sidecars)
  run.oci.handler=wasm|wasm-smart|wasmtime|wasmedge|wasmer    crun's spelling
  runwasm.io/engine=wasm|wasmtime|wasmtime-cli|wasmedge|wasmer    pick the engine
  runwasm.io/max-memory=64Mi   runwasm.io/timeout=30s   runwasm.io/fuel=N
  runwasm.io/sockets=true      runwasm.io/invoke=<export of a reactor module>

Node config: {config} (RUNWASM_CONFIG overrides).
Decisions and errors: the journal (journalctl -t runwasm), else syslog ([log] target).
More: man runwasm, and `runwasm VERB --help` for the admin verbs.

runc's own help follows ({delegate}):

"""


def usage(delegate: str, args: list[str]) -> None:
    """runwasm's usage, then runc's help for the same argv (by exec)."""
    from runwasm.config import config_path

    sys.stdout.write(USAGE.format(version=__version__, config=config_path(),
                                  delegate=delegate))
    sys.stdout.flush()
    delegates.execute(delegate, args)
