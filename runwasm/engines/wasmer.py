"""Wasmer: the `wasmer` Python package in-process where it imports, else the `wasmer`
executable as a child of the launcher.

The Python package has native wheels only up to Python 3.10, so the node config names
an interpreter that has it (`[engines.wasmer] python = ".../bin/python3.10"`); the
launcher then runs on that interpreter. Without one, `wasmer run` is used:
`--mapdir GUEST:HOST`, `--env=NAME=VALUE`, `--net` for sockets, then the module, `--`
and its arguments.

The package is Wasmer 2.1.1, whose WASI has known gaps (README, "WASI test suite"): preopen
names read one byte too long (a trailing NUL), no sock_shutdown, no poll_oneoff on clocks.

Neither can interrupt running wasm from inside: the package even holds the GIL while
wasm runs. So the in-process guest runs in a forked child of the launcher, which SIGTERM
ends by default, and the CLI is a child that the launcher signals.
"""

from __future__ import annotations

import os
import signal
import sys

from runwasm.engines import imports as engine_imports
from runwasm.engines.base import (
    EXIT_LAUNCH,
    EXIT_TRAP,
    PRECOMPILE,
    SOCKETS,
    TIMEOUT,
    WASI_P1,
    EngineError,
    EngineSettings,
    Installation,
    build_stamp,
    dist_version,
    missing,
)
from runwasm.engines.child import ChildProcessEngine
from runwasm.executables import is_executable
from runwasm.plan import APP_ROOT, Plan, guest_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_EXIT_PREFIX = "WASI exited with code: "


class Wasmer(ChildProcessEngine):
    _pid = 0  # the forked child running the guest in-process
    name = "wasmer"
    description = "Wasmer: the wasmer Python package (Python <= 3.10), else wasmer run"
    executable_name = "wasmer"
    # Only the package uses the precompiled-module cache; `wasmer run` compiles (or uses
    # its own cache) on every start.
    capabilities = frozenset({WASI_P1, SOCKETS, TIMEOUT})
    python_capabilities = frozenset({WASI_P1, TIMEOUT, PRECOMPILE})
    imports = engine_imports.WASMER

    # -- host side ---------------------------------------------------------------------

    def locate(self, settings: EngineSettings) -> Installation:
        if settings.python:
            return self._locate_python(settings.python)
        return super().locate(settings)

    def supported(self, installation: Installation) -> frozenset[str]:
        return self.python_capabilities if installation.interpreter else self.capabilities

    def _locate_python(self, python: str) -> Installation:
        if not is_executable(python):
            raise missing(self.name, f"python {python} (engines.wasmer.python) not found")
        prefix = os.path.dirname(os.path.dirname(os.path.abspath(python)))
        lib = os.path.join(prefix, "lib")
        sites = [os.path.join(lib, d, "site-packages") for d in
                 (os.listdir(lib) if os.path.isdir(lib) else []) if d.startswith("python3")]
        site = next((s for s in sites if os.path.isdir(os.path.join(s, "wasmer"))), "")
        if not site:
            raise missing(self.name, f"no wasmer package in the site-packages of {python}")
        real = os.path.realpath(python)
        base = os.path.dirname(os.path.dirname(real))
        return Installation(version=dist_version(site, "wasmer"), interpreter=real,
                            import_paths=(site,),
                            host_paths=(base, site))

    def version(self, settings: EngineSettings) -> str:
        if settings.python:
            return self._locate_python(settings.python).version
        return super().version(settings)

    # -- precompiled-module cache (the package) -------------------------------------

    def cache_identity(self, installation: Installation) -> str:
        # The package and compiler versions and the exact native extension that writes
        # and reads the artifacts (Module.serialize's format is the build's own).
        if not installation.interpreter or not installation.import_paths:
            return ""
        site = installation.import_paths[0]
        try:
            native = sorted(n for n in os.listdir(os.path.join(site, "wasmer"))
                            if n.endswith(".so"))[0]
            stamp = build_stamp(os.path.join(site, "wasmer", native), native)
        except (OSError, IndexError):
            return ""
        compiler = dist_version(site, "wasmer_compiler_cranelift")
        return f"wasmer-py {installation.version} cranelift {compiler} {stamp}"

    def precompile(self, module: str, out: str, codegen: dict[str, Any],
                   installation: Installation) -> None:
        """In the compile worker, on the package's interpreter."""
        wasmer, _, compiler = _package()
        try:
            _, compiled = _compile(wasmer, compiler, module)
        except (RuntimeError, ValueError, TypeError) as e:
            raise EngineError(f"cannot compile: {e}") from None
        with open(out, "wb") as f:
            f.write(compiled.serialize())

    # -- container side ----------------------------------------------------------------

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        argv = [plan.executable, "run", "--mapdir", f"/:{APP_ROOT}",
                "--mapdir", f".:{plan.cwd}"]
        argv += [f"--env={key}={value}" for key, value in env]  # '-'-led values stay values
        if plan.sockets:
            argv.append("--net")
        argv += plan.options
        return [*argv, plan.module, "--", *plan.args[1:]]

    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        if plan.executable:
            return super().run(plan, env)
        return self._run_in_process(plan, env)

    def _run_in_process(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        """The wasmer package holds the GIL while wasm runs, so no launcher thread could
        react to a signal or a timeout: the guest runs in a forked child instead, which
        SIGTERM ends by default and the launcher can wait for and signal."""
        pid = os.fork()
        if pid == 0:  # the child: default signal handling, then the guest
            try:
                import signal

                from runwasm.launcher.signals import TERMINATING

                for signum in TERMINATING:
                    signal.signal(signum, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINATING)
                code = self._run_guest(plan, env)
            except EngineError as e:
                sys.stderr.write(f"runwasm: {e}\n")
                code = EXIT_LAUNCH
            except BaseException as e:  # never return into the launcher's own code
                sys.stderr.write(f"runwasm: wasmer: {e}\n")
                code = EXIT_LAUNCH
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        self._pid = pid
        _, status = os.waitpid(pid, 0)
        self._pid = 0
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)

    def _run_guest(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        wasmer, wasi, compiler = _package()
        store, module = self._module(wasmer, compiler, plan)
        # A module without WASI imports still gets the (unused) WASI imports.
        version = wasi.get_version(module, strict=False) or wasi.Version.SNAPSHOT1
        builder: Any = wasi.StateBuilder(plan.args[0] if plan.args else plan.module)
        builder = builder.arguments(plan.args[1:]).environments(dict(env))
        builder = builder.map_directory("/", APP_ROOT).map_directory(".", plan.cwd)
        imports = builder.finalize().generate_import_object(store, version)
        try:
            instance = wasmer.Instance(module, imports)
            instance.exports._start()
        except RuntimeError as e:
            text = str(e)
            if _EXIT_PREFIX in text:
                return int(text.rsplit(_EXIT_PREFIX, 1)[1].split()[0])
            sys.stderr.write(f"runwasm: guest trapped: {text.strip().splitlines()[0]}\n")
            return EXIT_TRAP
        return 0

    def _module(self, wasmer: Any, compiler: Any, plan: Plan) -> tuple[Any, Any]:
        """(store, module): from runwasm's cache on an engine without a compiler (no
        Cranelift, no compile threads), else compiled here."""
        if plan.artifact:
            store = wasmer.Store(wasmer.engine.Universal())
            try:
                with open(plan.artifact, "rb") as f:
                    return store, wasmer.Module.deserialize(store, f.read())
            except (RuntimeError, ValueError, TypeError, OSError) as e:
                sys.stderr.write(f"runwasm: cached artifact unusable ({e}); compiling\n")
        try:
            return _compile(wasmer, compiler, plan.module)
        except (RuntimeError, ValueError, TypeError, OSError) as e:
            raise EngineError(f"cannot compile {guest_path(plan.module)}: {e}") from None

    def interrupt(self) -> None:
        super().interrupt()  # a CLI child gets SIGTERM
        if self._pid:
            os.kill(self._pid, signal.SIGTERM)

    def kill(self) -> None:
        super().kill()
        if self._pid:
            sys.stderr.write("runwasm: wasmer did not stop after SIGTERM; sending SIGKILL\n")
            os.kill(self._pid, signal.SIGKILL)


def _compile(wasmer: Any, compiler: Any, path: str) -> tuple[Any, Any]:
    """(store, module) compiled from the file with Cranelift; the package's errors as
    it raises them."""
    store = wasmer.Store(wasmer.engine.Universal(compiler))
    with open(path, "rb") as f:
        return store, wasmer.Module(store, f.read())


def _package() -> tuple[Any, Any, Any]:
    """(wasmer, wasmer.wasi, the Cranelift compiler class) from the package."""
    try:
        import wasmer
        from wasmer import wasi
        from wasmer_compiler_cranelift import Compiler
    except ImportError as e:
        raise EngineError(f"the wasmer package does not import here: {e}") from None
    return wasmer, wasi, Compiler


ADAPTER = Wasmer
