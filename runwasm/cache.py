"""The node's precompiled-module cache (host side, standard library only).

An entry is `<dir>/<key>.cwasm` (the engine's artifact) and `<dir>/<key>.json` (what it
was made from, its size and sha256). The key covers the module's sha256, the engine and
its exact build, every engine setting that changes the code, and the CPU. The directory
is root-owned, mode 0700, and only ever bound into a container as the one read-only
artifact that container runs.

- Compilation runs here, on the host, in a separate worker process bounded by
  `cache.compile_memory` (RLIMIT_AS) and `cache.compile_timeout`; a module that cannot
  be compiled within them fails `create`.
- Concurrent creates of one module compile it once: the others wait on the entry's
  lock (flock), then use the artifact.
- Entries are written to a temporary name and renamed. An entry whose artifact does not
  match its recorded size and sha256 is removed and rebuilt, never used; verification
  is remembered per file identity so a warm start does not rehash the artifact.
- After an insert, least-recently-used entries go until the cache fits
  `cache.max_size`. An engine upgrade changes the key: old entries are only pruned.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from runwasm import jsonfast
from runwasm.errors import RunwasmError
from runwasm.files import identity as file_identity
from runwasm.files import write_atomic
from runwasm.limits import parse_duration, parse_quantity

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runwasm.config import NodeConfig
    from runwasm.engines.base import Engine, Installation
    from runwasm.plan import Limits

FORMAT = 1
_CHUNK = 1 << 20


def _sha256(data: bytes) -> str:
    """sha256 of a small value without importing hashlib (OpenSSL: ~3 ms per call of
    runwasm); files go through hashlib, whose SHA extensions are 4x faster on big ones."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    return str(sha256(data).hexdigest())


def _sha256_file(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def _cpu() -> str:
    """The host CPU's features: an artifact may use any of them."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return _sha256(line.encode())[:16]
    except OSError:
        pass
    return "unknown"


class Entry:
    __slots__ = ("key", "artifact", "meta", "lock", "verified")

    def __init__(self, directory: str, key: str) -> None:
        self.key = key
        base = os.path.join(directory, key)
        self.artifact = base + ".cwasm"
        self.meta = base + ".json"
        self.lock = base + ".lock"
        self.verified = base + ".ok"  # the artifact's file identity when last verified

    def read_meta(self) -> dict[str, Any] | None:
        try:
            with open(self.meta, "rb") as f:
                data: dict[str, Any] = jsonfast.loads(f.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("format") == FORMAT else None

    def valid(self) -> bool:
        """The artifact is complete and unaltered (hashing only when it changed)."""
        meta = self.read_meta()
        try:
            st = os.stat(self.artifact)
        except OSError:
            return False
        if meta is None or st.st_size != meta.get("size"):
            return False
        current = file_identity(self.artifact)
        try:
            with open(self.verified) as f:
                if f.read() == current:
                    return True
        except OSError:
            pass
        if _sha256_file(self.artifact) != meta.get("sha256"):
            return False
        write_atomic(self.verified, current.encode(), 0o600)
        return True

    def remove(self) -> None:
        for path in (self.artifact, self.meta, self.verified):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


class Cache:
    def __init__(self, config: NodeConfig) -> None:
        self.directory = config.cache_dir
        self.max_size = parse_quantity("cache.max_size", config.cache_max_size)
        self.timeout = parse_duration("cache.compile_timeout", config.compile_timeout)
        self.memory = parse_quantity("cache.compile_memory", config.compile_memory)

    # -- keys ----------------------------------------------------------------------------

    def module_digest(self, path: str) -> str:
        """sha256 of a module, remembered per file identity (a rewrite changes ctime)."""
        current = file_identity(path)
        if not current:
            raise FileNotFoundError(path)
        memo = os.path.join(self.directory, "digests", _sha256(current.encode())[:32])
        try:
            with open(memo) as f:
                digest = f.read()
            if len(digest) == 64:
                return digest
        except OSError:
            pass
        digest = _sha256_file(path)
        try:
            write_atomic(memo, digest.encode(), 0o600)
        except OSError:
            pass
        return digest

    def key(self, adapter: Engine, build: str, digest: str,
            limits: Limits) -> tuple[str, dict[str, Any]]:
        identity = {
            "format": FORMAT, "module": digest, "engine": adapter.name, "build": build,
            "codegen": adapter.codegen_settings(limits), "cpu": _cpu(),
            "machine": os.uname().machine,
        }
        blob = jsonfast.dumps([identity[k] for k in sorted(identity)])
        return _sha256(blob.encode())[:40], identity

    # -- use -----------------------------------------------------------------------------

    def artifact_for(self, adapter: Engine, installation: Installation, module: str,
                     shown: str, limits: Limits) -> tuple[str, bool] | None:
        """(the cached artifact for `module`, whether it was compiled now); None when
        this engine uses no cache."""
        build = adapter.cache_identity(installation) if self.directory else ""
        if not build:
            return None
        self._ensure_directory()
        key, identity = self.key(adapter, build, self.module_digest(module), limits)
        entry = Entry(self.directory, key)
        fd = os.open(entry.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # concurrent creates of one module wait here
            if entry.valid():
                os.utime(entry.meta)  # last use, for LRU pruning
                return entry.artifact, False
            entry.remove()
            self._compile(adapter, installation, module, shown, identity, entry)
        finally:
            os.close(fd)
        self.prune(keep=entry.key)
        return entry.artifact, True

    def _ensure_directory(self) -> None:
        try:
            os.makedirs(os.path.join(self.directory, "digests"), mode=0o700, exist_ok=True)
            os.chmod(self.directory, 0o700)
        except OSError as e:
            raise RunwasmError(f"cache {self.directory}: {e.strerror}") from None

    def _compile(self, adapter: Engine, installation: Installation, module: str, shown: str,
                 identity: dict[str, Any], entry: Entry) -> None:
        import subprocess
        import sys

        tmp = f"{entry.artifact}.tmp{os.getpid()}"
        request = jsonfast.dumps({"engine": adapter.name, "module": module, "out": tmp,
                                  "codegen": identity["codegen"],
                                  "installation": installation.to_dict()})
        from runwasm.engines.import_paths import import_path, import_root

        interpreter = installation.interpreter or os.path.realpath(sys.executable)
        paths = import_path(import_root(adapter.name), installation)
        boot = f"import sys;sys.path[:0]={paths!r};from runwasm.compile_worker import main;main()"
        memory = self.memory

        def bounded() -> None:  # in the worker, before exec
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

        started = time.monotonic()
        # Its own session: at the timeout the whole group goes, an engine's compiler
        # process (wasmtime or wasmedge compile) included.
        worker = subprocess.Popen([interpreter, "-I", "-S", "-c", boot, request],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, preexec_fn=bounded,
                                  start_new_session=True)
        try:
            _, stderr = worker.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            import signal

            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
            _unlink(tmp)  # (an engine's own temporary files beside it: pruned later)
            raise RunwasmError(f"cannot precompile {shown} within cache.compile_timeout="
                               f"{self.timeout:g}s") from None
        result = subprocess.CompletedProcess(worker.args, worker.returncode, "", stderr)
        if result.returncode != 0:
            from runwasm.compile_worker import EXIT_MEMORY

            _unlink(tmp)
            lines = result.stderr.strip().splitlines()
            reason = lines[-1] if lines else f"exit code {result.returncode}"
            if result.returncode == EXIT_MEMORY or result.returncode < 0:
                # Out of memory, or killed (the kernel's OOM killer, a crash under it).
                reason = (f"{reason}: it needs more than cache.compile_memory="
                          f"{self.memory} bytes")
            raise RunwasmError(f"cannot precompile {shown}: {reason}")
        size = os.stat(tmp).st_size
        meta = dict(identity, size=size, sha256=_sha256_file(tmp), source=shown,
                    compile_seconds=round(time.monotonic() - started, 3), created=time.time())
        os.chmod(tmp, 0o644)  # the container user reads it through its read-only bind
        os.replace(tmp, entry.artifact)
        write_atomic(entry.meta, jsonfast.dumps(meta).encode(), 0o600)
        write_atomic(entry.verified, file_identity(entry.artifact).encode(), 0o600)

    # -- admin ---------------------------------------------------------------------------

    def entries(self) -> list[tuple[Entry, dict[str, Any], float]]:
        """(entry, meta, last use) for every complete entry, least recently used first."""
        found = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        for name in names:
            if name.endswith(".json"):
                entry = Entry(self.directory, name[:-5])
                meta = entry.read_meta()
                if meta is not None:
                    try:
                        found.append((entry, meta, os.stat(entry.meta).st_mtime))
                    except OSError:
                        pass
        return sorted(found, key=lambda item: item[2])

    def prune(self, keep: str = "", max_size: int | None = None) -> list[str]:
        """Remove least-recently-used entries until the cache fits; the removed keys."""
        budget = self.max_size if max_size is None else max_size
        entries = self.entries()
        total = sum(meta.get("size", 0) for _, meta, _ in entries)
        removed = []
        for entry, meta, _ in entries:
            if total <= budget:
                break
            if entry.key == keep:
                continue
            fd = os.open(entry.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EACCES):
                        continue  # in use by a create right now
                    raise
                entry.remove()
            finally:
                os.close(fd)
            total -= meta.get("size", 0)
            removed.append(entry.key)
        self._prune_leftovers()
        return removed

    def _prune_leftovers(self) -> None:
        """Lock files and digest memos of entries that are gone; stale temporary files."""
        try:
            names = set(os.listdir(self.directory))
        except OSError:
            return
        for name in names:
            stem, _, ext = name.partition(".")
            if ext in ("lock", "ok") and f"{stem}.json" not in names:
                _unlink(os.path.join(self.directory, name))
            elif ".cwasm.tmp" in name:
                path = os.path.join(self.directory, name)
                try:
                    if time.time() - os.stat(path).st_mtime > self.timeout:
                        _unlink(path)
                except OSError:
                    pass

    def clear(self) -> int:
        removed = 0
        for entry, _, _ in self.entries():
            entry.remove()
            removed += 1
        digests = os.path.join(self.directory, "digests")
        for name in os.listdir(digests) if os.path.isdir(digests) else []:
            _unlink(os.path.join(digests, name))
        self._prune_leftovers()
        return removed


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
