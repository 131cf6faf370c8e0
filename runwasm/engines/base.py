"""The contract every engine adapter keeps.

An adapter is one class in one module. Host side (the handler, at `create`, on the
standard library only): `capabilities`, `locate()` and `check()`, with no engine
library imported. Container side (the launcher): `run()`, `interrupt()` and `kill()`,
which may import the engine. Adapters are found through the `runwasm.engines`
entry-point group (see registry.py), the built-in ones too.
"""

from __future__ import annotations

import abc
import posix  # not os: the launcher imports this module (see launcher/main.py)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Final

    from runwasm.engines.imports import Imports
    from runwasm.plan import Limits, Plan

# Exit codes the launcher uses besides the guest's own (documented in the README).
EXIT_MEMORY: Final = 122  # the guest failed after reaching runwasm.io/max-memory
EXIT_FUEL: Final = 123  # the guest ran out of runwasm.io/fuel
EXIT_TIMEOUT: Final = 124  # the guest ran past runwasm.io/timeout (as GNU timeout)
EXIT_LAUNCH: Final = 126  # the module could not be loaded or instantiated
EXIT_TRAP: Final = 134  # the guest trapped (as a native process that aborts: 128+SIGABRT)

# Capability names, as shown by `runwasm engines` and in error messages.
WASI_P1: Final = "wasi-p1"
COMPONENTS: Final = "components"  # components / WASI preview 2
SOCKETS: Final = "sockets"
MAX_MEMORY: Final = "max-memory"
TIMEOUT: Final = "timeout"
FUEL: Final = "fuel"
PRECOMPILE: Final = "precompile"  # can use runwasm's precompiled-module cache
INVOKE: Final = "invoke"  # runs reactor modules: _initialize, then a named export
ALL_CAPABILITIES: Final = (WASI_P1, COMPONENTS, SOCKETS, MAX_MEMORY, TIMEOUT, FUEL, PRECOMPILE,
                           INVOKE)

# Wasmtime and Wasmer run WASI calls on a tokio runtime, which by default starts one
# worker thread per CPU of the node. A WASI guest's host calls block its one thread, so
# one worker serves it; on a 64-core node the default would cost every container 64
# threads, their stacks and their start. TOKIO_WORKER_THREADS is tokio's own setting.
TOKIO_ONE_WORKER: Final = {"TOKIO_WORKER_THREADS": "1"}

# Launcher-side directory where the engine view links the module under the name
# Engine.module_name() gives (engines that derive the guest's argv[0] from it).
MODULE_NAMES: Final = "/.runwasm/name"


class EngineError(Exception):
    """The engine cannot run this container; one line for the user."""


class EngineSettings:
    """The node config's [engines.<name>] table."""

    __slots__ = ("path", "options", "python")

    def __init__(self, path: str = "", options: tuple[str, ...] = (), python: str = "") -> None:
        self.path = path  # the engine's executable, for CLI engines
        self.options = options  # extra command-line options, for CLI engines
        self.python = python  # an interpreter to run the launcher on (e.g. wasmer's 3.10)


class Installation:
    """Where an installed engine lives: what the launcher needs inside the container."""

    __slots__ = ("executable", "version", "interpreter", "import_paths", "host_paths",
                 "files", "environment")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __init__(self, *, executable: str = "", version: str = "", interpreter: str = "",
                 import_paths: tuple[str, ...] = (), host_paths: tuple[str, ...] = (),
                 files: tuple[str, ...] = (), environment: tuple[str, ...] = ()) -> None:
        self.executable = executable  # CLI engines: the binary the launcher runs
        self.version = version
        self.interpreter = interpreter  # launcher interpreter, when not runwasm's own
        self.import_paths = import_paths  # extra sys.path entries for the launcher
        # Host directories to bind read-only for the launcher (never seen by the guest):
        # for CLI engines, those of the binary, every library it loads and its plugins.
        self.host_paths = host_paths
        # The files of this exact build (binary, libraries, plugins), for cache keys.
        self.files = files
        # NAME=VALUE the engine itself needs (CLI engines; never the guest's).
        self.environment = environment


class Engine(abc.ABC):
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]
    description: ClassVar[str] = ""
    # What a core module may import (runwasm.engines.imports); None: not checked.
    imports: ClassVar[Imports | None] = None

    # -- host side ---------------------------------------------------------------------

    @abc.abstractmethod
    def locate(self, settings: EngineSettings) -> Installation:
        """Find the engine on this node; EngineError saying what is missing if it is not."""

    def supported(self, installation: Installation) -> frozenset[str]:
        """What this installation can do (an adapter with two modes may narrow it)."""
        return self.capabilities

    def provided_imports(self, installation: Installation) -> Imports | None:
        """What this installation links for a core module (see `imports`)."""
        return self.imports

    def version(self, settings: EngineSettings) -> str:
        """The engine's version (may run the engine; not for the hot path)."""
        return self.locate(settings).version

    def module_name(self, args: list[str]) -> str:
        """For an engine that names the guest's argv[0] after the module's file (it has
        no option to set it): the file name to run the module by, linked in
        MODULE_NAMES, so that argv[0] comes closest to `args[0]`; "" for engines that
        take argv[0] as given."""
        return ""

    # -- precompiled-module cache (see runwasm/cache.py) -------------------------------

    def cache_identity(self, installation: Installation) -> str:
        """The exact engine build, for cache keys; "" when this engine uses no cache."""
        return ""

    def codegen_settings(self, limits: Limits) -> dict[str, Any]:
        """Every setting that changes the compiled code; part of the cache key."""
        return {}

    def precompile(self, module: str, out: str, codegen: dict[str, Any],
                   installation: Installation) -> None:
        """Compile `module` to an artifact at `out` (in runwasm's compile worker)."""
        raise EngineError(f"engine {self.name} cannot precompile")

    # -- container side ----------------------------------------------------------------

    @abc.abstractmethod
    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        """Run the guest to completion; its exit code (EXIT_* for runwasm's own ends).

        A trap is reported on stderr as one line; a load failure raises EngineError.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Stop the guest promptly; called from another thread (signals, timeout)."""

    def kill(self) -> None:  # noqa: B027 - in-process engines have nothing to kill
        """Last resort after interrupt() and a grace period (child processes)."""


def find_executable(name: str, configured: str = "") -> str | None:
    """The configured path (a path or a name), else `name` on PATH."""
    from runwasm.executables import search  # host side

    return search(configured or name)


def build_stamp(path: str, name: str) -> str:
    """`name:size:mtime_ns` of the file at `path`, for cache identities: a rebuilt or
    replaced engine file changes it. OSError where there is no file."""
    st = posix.stat(path)
    return f"{name}:{st.st_size}:{st.st_mtime_ns}"


def dist_version(site: str, distribution: str) -> str:
    """The version of `distribution` installed in `site`, from its .dist-info name."""
    prefix = distribution + "-"
    for entry in posix.listdir(site):
        if entry.startswith(prefix) and entry.endswith(".dist-info"):
            return entry[len(prefix):-len(".dist-info")]
    return ""


def missing(engine: str, what: str) -> EngineError:
    return EngineError(f"engine {engine} is not installed: {what}")
