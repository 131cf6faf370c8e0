"""WasmEdge's `wasmedge` executable, as a child of the launcher (no maintained Python
binding exists).

Syntax (`wasmedge [OPTIONS] [--] WASM_OR_SO [ARG ...]`): `--dir GUEST:HOST`,
`--env=NAME=VALUE`, `--memory-page-limit PAGES` (64 KiB pages), `--run-mode
interpreter|aot`. WasmEdge exits with the guest's exit code; its sockets extension is
built in. Wall-clock timeouts are the launcher's (uniform across engines), not
`--time-limit`.

- argv[0]: WasmEdge has no option to set it; it gives the guest the module file's name
  with its extension changed to `.wasm`. So the launcher runs the module through a
  symlink named after process.args[0] (see module_name()): argv[0] is its last path
  component, with `.wasm` appended unless it ends so.
- AOT: `wasmedge compile` (LLVM) writes a Wasm file with the native code in a custom
  section named "wasmedge". WasmEdge 0.17 runs that code only with `--run-mode aot`,
  and then runs whatever code the section holds, unchecked against the module. So a
  module from an image always runs with `--run-mode interpreter`; only runwasm's own
  cache artifact, compiled here on the host from a module stripped of any such section,
  runs with `--run-mode aot`.
- Its own reports (a trap's cause, a load failure) go to stdout, where the launcher
  cannot read them: a trap exits 134 (WasmEdge's code, as SIGABRT would), and a guest
  that fails at its memory limit (enforced: memory.grow fails past it) exits with its
  own failure, not EXIT_MEMORY.
- Where it is installed (README, "Engines"): the configured path, else PATH, else
  where WasmEdge's installer puts it (`~/.wasmedge/bin`). Its plugins load from
  WASMEDGE_PLUGIN_PATH (runwasm's environment, passed on to the engine), then from
  `LIB/wasmedge` when libwasmedge is under /usr or /lib, else from `LIB/../plugin`.
"""

from __future__ import annotations

import os

from runwasm.engines import imports as engine_imports
from runwasm.engines.base import (
    MAX_MEMORY,
    MODULE_NAMES,
    PRECOMPILE,
    SOCKETS,
    TIMEOUT,
    WASI_P1,
    EngineError,
    EngineSettings,
    Installation,
    build_stamp,
)
from runwasm.engines.child import ChildProcessEngine
from runwasm.plan import APP_ROOT, Plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from runwasm.plan import Limits

_PAGE: Final = 65536
_AOT_SECTION: Final = b"wasmedge"
PLUGIN_PATH: Final = "WASMEDGE_PLUGIN_PATH"
_NAME_MAX: Final = 255
_OUT_OF_MEMORY: Final = ("bad_alloc", "annot allocate memory", "failed to map segment")


class WasmEdge(ChildProcessEngine):
    name = "wasmedge"
    description = "WasmEdge's command-line runtime (wasmedge)"
    executable_name = "wasmedge"
    default_locations = ("~/.wasmedge/bin/wasmedge",)  # WasmEdge's installer, without -p
    capabilities = frozenset({WASI_P1, SOCKETS, MAX_MEMORY, TIMEOUT, PRECOMPILE})
    imports = engine_imports.WASMEDGE

    # -- host side ---------------------------------------------------------------------

    def plugin_directories(self, libraries: list[str]) -> list[str]:
        found = [p for p in os.environ.get(PLUGIN_PATH, "").split(":") if p]
        for library in libraries:
            if os.path.basename(library).startswith("libwasmedge.so"):
                libdir = os.path.normpath(os.path.dirname(library))
                # As WasmEdge decides it (a prefix test on the path, as it does).
                plugins = os.path.join(libdir, "wasmedge") \
                    if libdir.startswith(("/usr", "/lib")) else \
                    os.path.normpath(os.path.join(libdir, "..", "plugin"))
                found.append(plugins)
        return [os.path.abspath(p) for p in found]

    def version(self, settings: EngineSettings) -> str:
        text = super().version(settings)  # "PATH version X.Y.Z"
        return text.rsplit(" version ", 1)[-1] if " version " in text else text

    def engine_environment(self) -> tuple[str, ...]:
        value = os.environ.get(PLUGIN_PATH)
        return (f"{PLUGIN_PATH}={value}",) if value else ()

    def module_name(self, args: list[str]) -> str:
        name = args[0].rsplit("/", 1)[-1] if args else ""
        if not name.endswith(".wasm") or name == ".wasm":
            name += ".wasm"
        if name == ".wasm" or "\0" in name or \
                len(name.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            return ""  # no usable name: the module's own
        return name

    # -- precompiled-module cache -------------------------------------------------------

    def cache_identity(self, installation: Installation) -> str:
        # The exact build: the binary and every library it loads (libwasmedge holds the
        # compiler, libLLVM its code generator), by size and modification time.
        parts = [build_stamp(path, os.path.realpath(path))
                 for path in installation.files or (installation.executable,)]
        return "wasmedge " + " ".join(sorted(parts))

    def codegen_settings(self, limits: Limits) -> dict[str, Any]:
        # Native code for this CPU (not --generic-binary), optimisation level 2, no
        # statistics or interruption points: what `wasmedge compile` does by default.
        return {"optimize": "2", "generic_binary": False}

    def precompile(self, module: str, out: str, codegen: dict[str, Any],
                   installation: Installation) -> None:
        import subprocess

        # A module carrying an AOT section of its own (from an image) would keep it
        # beside the new one: compile a copy without it.
        with open(module, "rb") as f:
            data = f.read()
        stripped = f"{out}.in.wasm"  # beside `out`: the cache prunes it if left behind
        try:
            with open(stripped, "wb") as f:
                f.write(without_custom_sections(data, _AOT_SECTION))
            argv = [installation.executable, "compile", "--optimize",
                    str(codegen.get("optimize", "2"))]
            if codegen.get("generic_binary"):
                argv.append("--generic-binary")
            result = subprocess.run([*argv, stripped, out], capture_output=True, text=True,
                                    env={"PATH": "/usr/bin:/bin"}, check=False)
        finally:
            try:
                os.unlink(stripped)
            except FileNotFoundError:
                pass
        if result.returncode != 0:
            text = result.stdout + result.stderr
            # Killed (LLVM aborts on bad_alloc), or its libraries could not be mapped:
            # the cache's memory bound (RLIMIT_AS) was reached.
            if result.returncode < 0 or any(sign in text for sign in _OUT_OF_MEMORY):
                raise MemoryError(text)
            errors = [line for line in text.splitlines() if "[error]" in line]
            last = (errors or text.strip().splitlines() or ["wasmedge compile failed"])[-1]
            raise EngineError(f"cannot compile: {last.split('] ', 2)[-1].strip()}")

    # -- container side ----------------------------------------------------------------

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        argv = [plan.executable, "--dir", f"/:{APP_ROOT}", "--dir", f".:{plan.cwd}"]
        argv += [f"--env={key}={value}" for key, value in env]  # '-'-led values stay values
        if plan.limits.max_memory is not None:
            argv += ["--memory-page-limit", str(max(1, plan.limits.max_memory // _PAGE))]
        # AOT code only from runwasm's cache; the interpreter for everything else.
        argv += ["--run-mode", "aot" if plan.artifact else "interpreter"]
        # WasmEdge logs to stdout, the guest's: errors only, so a guest that succeeds
        # has exactly its own output there (no warnings).
        argv += ["--log-level", "error"]
        argv += plan.options
        target = plan.artifact or plan.module
        link = f"{MODULE_NAMES}/{self.module_name(plan.args)}"
        try:  # the create's link; an exec'd module has none (or another's by its name)
            module = link if os.readlink(link) == target else target
        except OSError:
            module = target
        return [*argv, "--", module, *plan.args[1:]]


def without_custom_sections(data: bytes, name: bytes) -> bytes:
    """A Wasm module's bytes without its custom sections called `name`."""
    kept = [data[:8]]
    i = 8
    while i < len(data):
        start = i
        size, i = _leb(data, i + 1)
        end = i + size
        if data[start] == 0:
            length, j = _leb(data, i)
            if data[j:j + length] == name:
                i = end
                continue
        kept.append(data[start:end])
        i = end
    if i != len(data):
        raise EngineError("cannot compile: the module's sections run past its end")
    return b"".join(kept)


def _leb(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 28:
            raise EngineError("cannot compile: the module's sections run past its end")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


ADAPTER = WasmEdge
