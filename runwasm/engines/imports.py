"""What each engine gives a core module to import: one declaration per engine.

The handler checks a module's import section against its engine's declaration at
`create` (standard library only, no engine loaded), so a module importing what its engine
lacks is refused there, naming the import, instead of trapping at start inside the
container. Each adapter points at its declaration (`Engine.imports`); an adapter that
declares none is not checked. Components are checked by the engine itself.

The sets were taken from the engines themselves: a module importing each name, run on
each engine, tells "unknown import" from "incompatible import type"
(tests/unit/test_hostile_imports.py keeps them honest where the engine is installed).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final, Optional

    # import module -> the function names provided there; None: any name (the module
    # comes from an extension whose functions runwasm cannot list)
    Imports = Mapping[str, Optional[frozenset[str]]]

P1_MODULE: Final = "wasi_snapshot_preview1"
UNSTABLE_MODULE: Final = "wasi_unstable"  # WASI snapshot 0

# WASI preview 1 (wasi_snapshot_preview1.witx): all 46 functions.
WASI_P1: Final = frozenset({
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get",
    "clock_time_get", "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get",
    "fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size",
    "fd_filestat_set_times", "fd_pread", "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite",
    "fd_read", "fd_readdir", "fd_renumber", "fd_seek", "fd_sync", "fd_tell", "fd_write",
    "path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
    "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
    "path_unlink_file", "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get",
    "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
})
# WASI snapshot 0 has the same names but sock_accept, which came later.
WASI_UNSTABLE: Final = WASI_P1 - {"sock_accept"}
# WasmEdge's socket extension adds these to wasi_snapshot_preview1.
WASMEDGE_SOCKETS: Final = frozenset({
    "sock_open", "sock_bind", "sock_listen", "sock_connect", "sock_recv_from", "sock_send_to",
    "sock_getlocaladdr", "sock_getpeeraddr", "sock_getaddrinfo", "sock_setsockopt",
    "sock_getsockopt", "epoll_oneoff",
})
# WasmEdge plugins (in its plugin directory, when installed) add modules of their own.
WASMEDGE_PLUGIN_MODULES: Final = ("wasi:logging/logging", "wasi_ephemeral_nn",
                                  "wasi_ephemeral_crypto_common", "wasi_ephemeral_crypto",
                                  "wasi_ephemeral_crypto_asymmetric_common",
                                  "wasi_ephemeral_crypto_kx", "wasi_ephemeral_crypto_signatures",
                                  "wasi_ephemeral_crypto_symmetric", "wasmedge_process")

# wasmtime-py's Linker.define_wasi(): preview 1 only.
WASMTIME: Final[Imports] = {P1_MODULE: WASI_P1}
# `wasmtime run` also links snapshot 0.
WASMTIME_CLI: Final[Imports] = {P1_MODULE: WASI_P1, UNSTABLE_MODULE: WASI_UNSTABLE}
# The wasmer Python package (wasmer 1.1): either snapshot, without sock_accept. The
# `wasmer run` CLI was not available to check, so it is declared the same.
WASMER: Final[Imports] = {P1_MODULE: WASI_UNSTABLE, UNSTABLE_MODULE: WASI_UNSTABLE}
WASMEDGE: Final[Imports] = {P1_MODULE: WASI_P1 | WASMEDGE_SOCKETS,
                            **{name: None for name in WASMEDGE_PLUGIN_MODULES}}


def missing(imports: Imports, module: str, name: str) -> bool:
    """Whether `module`.`name` is not among `imports`."""
    if module not in imports:
        return True
    names = imports[module]
    return names is not None and name not in names
