"""Shared base for engines that run as a child process of the launcher (CLI engines).

The child inherits the launcher's stdio (a terminal included). interrupt() sends it
SIGTERM; kill() sends SIGKILL after the launcher's grace period (and says so). When a
limit is set and stderr is not a terminal, the child's stderr passes through a pipe so
the launcher can tell a limit's trap from any other and exit with the limit's code.

The launcher stays resident as the engine's parent for the whole life of the container,
so it keeps to the C modules it needs: posix_spawn instead of `subprocess`, the pipe read
in the main thread instead of a `threading` thread (together ~1.5 MiB per container).
"""

from __future__ import annotations

import _thread
import os
import sys

from runwasm.engines.base import (
    EXIT_FUEL,
    EXIT_MEMORY,
    EXIT_TRAP,
    TOKIO_ONE_WORKER,
    Engine,
    EngineError,
    EngineSettings,
    Installation,
    find_executable,
    missing,
)
from runwasm.executables import is_executable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions, typed
    from typing import ClassVar

    from runwasm.plan import Plan
else:
    import _signal

# The engine's own environment: minimal, so nothing of the launcher leaks into the guest.
ENGINE_ENV = {"PATH": "/usr/bin:/bin", **TOKIO_ONE_WORKER}


class ChildProcessEngine(Engine):
    executable_name: ClassVar[str]
    # Where the engine's own installer puts it by default (`~` is the user runwasm runs
    # as), searched after the configured path and PATH.
    default_locations: ClassVar[tuple[str, ...]] = ()
    # Substrings of the engine's stderr that mean a trap, or a limit, ended the guest.
    trap_markers: ClassVar[tuple[str, ...]] = ()
    fuel_markers: ClassVar[tuple[str, ...]] = ()
    memory_markers: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._child_pid = 0  # the engine process while it runs (not yet reaped)
        self._lock = _thread.allocate_lock()
        self._interrupted = False

    # -- host side ---------------------------------------------------------------------

    def locate(self, settings: EngineSettings) -> Installation:
        path = find_executable(self.executable_name, settings.path)
        if path is None and not settings.path:
            path = next((p for p in map(os.path.expanduser, self.default_locations)
                         if is_executable(p)), None)
        if path is None:
            where = settings.path or " or ".join(
                (f"{self.executable_name} on PATH", *self.default_locations))
            raise missing(self.name, f"{where} not found")
        return self.installation(os.path.realpath(path))

    def installation(self, executable: str) -> Installation:
        """The binary with every library it loads and its plugins with theirs (their
        directories are bound read-only for the launcher); EngineError naming a library
        the loader would not find, rather than failing inside the container.

        Resolving costs ~3 ms of every create; the result is remembered in runwasm's
        state per binary, with the identity of every file and directory it depended on,
        and used only while none of them changed."""
        from runwasm import elfdeps

        environment = self.engine_environment()
        memo = _Memo(self.name, executable, environment)
        remembered = memo.read()
        if remembered is not None:
            files, host_paths = remembered
            return Installation(executable=executable, files=files, host_paths=host_paths,
                                environment=environment)
        resolver = elfdeps.Resolver()
        found, unresolved = resolver.loaded(executable)
        found = found or [executable]  # not ELF (a script): its interpreter is the system's
        if unresolved:
            name, needed_by = unresolved[0]
            raise missing(self.name, f"{needed_by} needs {name}, which the dynamic loader "
                                     "cannot find")
        candidates = self.plugin_directories(found)
        plugin_dirs = [p for p in candidates if os.path.isdir(p)]
        walked = [d for top in plugin_dirs for d, _, _ in os.walk(top)]
        for plugin in elfdeps.shared_objects(plugin_dirs):
            # A plugin the loader cannot complete is skipped by the engine, as on the host.
            for path in resolver.loaded(plugin)[0]:
                if path not in found:
                    found.append(path)
        files = tuple(found)
        host_paths = tuple(elfdeps.directories(found) + plugin_dirs)
        memo.write(files, host_paths, [*resolver.consulted(), *candidates, *walked])
        return Installation(executable=executable, files=files, host_paths=host_paths,
                            environment=environment)

    def plugin_directories(self, libraries: list[str]) -> list[str]:
        """Directories the engine loads plugins from, given the libraries it loads
        (those that do not exist too: one may appear)."""
        return []

    def engine_environment(self) -> tuple[str, ...]:
        """NAME=VALUE the engine needs in the container (e.g. where its plugins are)."""
        return ()

    def version(self, settings: EngineSettings) -> str:
        import subprocess

        path = self.locate(settings).executable
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=10, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.strip().splitlines()[0] if out.strip() else ""

    # -- container side ----------------------------------------------------------------

    def command(self, plan: Plan, env: list[tuple[str, str]]) -> list[str]:
        """The engine's full command line for this plan (documented CLI syntax only)."""
        raise NotImplementedError

    def run(self, plan: Plan, env: list[tuple[str, str]]) -> int:
        argv = self.command(plan, env)
        # Reading the engine's stderr (passed on as it comes) tells a trap or a limit from
        # a guest's own exit(1); a terminal is left alone.
        watch = not os.isatty(2)
        with self._lock:
            if self._interrupted:
                return 128 + _signal.SIGTERM
            read_end, write_end = os.pipe() if watch else (-1, -1)
            try:
                engine_env = dict(item.partition("=")[::2] for item in plan.engine_env)
                pid = _spawn(argv, write_end, engine_env)
            except OSError as e:
                raise EngineError(f"cannot start {argv[0]}: {e.strerror}") from None
            finally:
                if watch:
                    os.close(write_end)
            self._child_pid = pid
        kept = _copy_to_stderr(read_end) if watch else b""
        _, status = os.waitpid(pid, 0)
        with self._lock:
            self._child_pid = 0
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            return 128 - code
        if watch and code != 0:
            text = kept.decode("utf-8", "replace")
            if any(m in text for m in self.memory_markers) and plan.limits.max_memory:
                sys.stderr.write("runwasm: guest failed after reaching its memory limit "
                                 f"(runwasm.io/max-memory={plan.limits.max_memory} bytes)\n")
                return EXIT_MEMORY
            if any(m in text for m in self.fuel_markers):
                sys.stderr.write(f"runwasm: guest ran out of fuel (runwasm.io/fuel="
                                 f"{plan.limits.fuel})\n")
                return EXIT_FUEL
            if any(m in text for m in self.trap_markers):
                sys.stderr.write(f"runwasm: guest trapped: {_last_cause(text)}\n")
                return EXIT_TRAP
        return code

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            self._signal_child(_signal.SIGTERM)

    def kill(self) -> None:
        with self._lock:
            if self._child_pid:
                sys.stderr.write(f"runwasm: {self.name} did not stop after SIGTERM; "
                                 "sending SIGKILL\n")
                self._signal_child(_signal.SIGKILL)

    def _signal_child(self, signum: int) -> None:
        """With the lock held. The child may have ended and not yet been reaped."""
        if self._child_pid:
            try:
                os.kill(self._child_pid, signum)
            except ProcessLookupError:
                pass


def _spawn(argv: list[str], stderr: int, engine_env: dict[str, str]) -> int:
    """Start the engine: in /, with ENGINE_ENV and what the engine needs (its own
    environment, not the guest's: that goes on the command line), no signal blocked (the
    launcher blocks the terminating ones for its sigwait thread), only stdio inherited,
    and stderr from `stderr` when that is not -1."""
    actions: list[tuple[int, ...]] = []
    if stderr != -1:
        actions.append((os.POSIX_SPAWN_DUP2, stderr, 2))
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the runtime passed stdio only, as it does by default
        open_fds = []
    for fd in open_fds:
        if fd > 2 and fd != stderr and _inheritable(fd):
            actions.append((os.POSIX_SPAWN_CLOSE, fd))
    os.chdir("/")  # posix_spawn has no cwd; the launcher needs its own no more
    return os.posix_spawn(argv[0], argv, {**ENGINE_ENV, **engine_env}, file_actions=actions,
                          setsigmask=())


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # the descriptor listdir itself used, now closed
        return False


def _copy_to_stderr(fd: int) -> bytes:
    """Copy a pipe to our stderr until it closes; its last bytes."""
    kept = b""
    while True:
        data = os.read(fd, 16384)  # small reads: the resident parent keeps its heap small
        if not data:
            os.close(fd)
            return kept
        os.write(2, data)
        kept = (kept + data)[-8192:]


def _last_cause(text: str) -> str:
    """The innermost cause in an engine's error report, as one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "unknown error"
    return last.split(": ", 1)[1] if last[:1].isdigit() and ": " in last else last


# runwasm's own state (root-only), beside config.MEMO_DIR; see memo.py.
MEMO_DIR = "/var/lib/runwasm/engine-files"


class _Memo:
    """What an engine binary loads, remembered with what it was resolved from."""

    FORMAT = 1  # of what is remembered: a new way of resolving changes it

    def __init__(self, engine: str, executable: str, environment: tuple[str, ...]) -> None:
        from runwasm import memo

        self.path = memo.path_for(MEMO_DIR, executable)
        self.key = [self.FORMAT, engine, executable, *environment]

    def read(self) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        from runwasm import memo
        from runwasm.files import identity

        data = memo.read(self.path)
        try:
            if data["key"] != self.key or any(
                    identity(path) != seen for path, seen in data["watched"]):
                return None
            return tuple(data["files"]), tuple(data["host_paths"])
        except (KeyError, TypeError, ValueError):
            return None

    def write(self, files: tuple[str, ...], host_paths: tuple[str, ...],
              watched: list[str]) -> None:
        """Best effort: where runwasm cannot write its state, it resolves every time."""
        from runwasm import memo
        from runwasm.files import identity

        memo.write(self.path, {"key": self.key, "files": files, "host_paths": host_paths,
                               "watched": [[path, identity(path)]
                                           for path in sorted(set(watched))]})
