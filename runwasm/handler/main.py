"""runwasm's entry point: a runc-compatible command line.

Only create, run and exec are looked at; everything else is the delegate's, by
os.execv with the same argv. Keep this path on the standard library.
"""

from __future__ import annotations

import os
import sys

from runwasm import config as node_config
from runwasm.errors import RunwasmError
from runwasm.handler import argv as argv_scan
from runwasm.handler import delegate as delegates
from runwasm.handler.log import Log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final, NoReturn

    from runwasm.config import NodeConfig
    from runwasm.handler.argv import Invocation


def main() -> NoReturn:
    args = sys.argv[1:]
    inv = argv_scan.scan(args)
    log = Log(inv.log_path, inv.log_format, debug=inv.globals.get("debug") == "true",
              container_id=inv.container_id or "")
    try:
        if inv.verb not in argv_scan.RUNC_VERBS:
            _admin(inv)
        config = node_config.load()
        log.use_node_config(config)
        sys.exit(_dispatch(inv, config, log))
    except RunwasmError as e:
        log.error(one_line(f"runwasm: {e.message}"))
        log.flush()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a bug: still one line for the caller, never a traceback
        log.error(one_line(f"runwasm: internal error: {type(e).__name__}: {e}"))
        log.flush()
        sys.exit(1)


def _admin(inv: Invocation) -> None:
    """An admin verb (or `runwasm help VERB` for one) runs the admin CLI and exits."""
    from runwasm.cli import VERBS as ADMIN_VERBS  # a dict literal, no imports

    if inv.verb == "help" and inv.args[inv.verb_index + 1:inv.verb_index + 2] and \
            inv.args[inv.verb_index + 1] in ADMIN_VERBS:  # `runwasm help doctor`
        from runwasm.cli.app import run

        sys.exit(run([*inv.args[inv.verb_index + 1:inv.verb_index + 2], "--help"]))
    if inv.verb in ADMIN_VERBS:
        # Admin verbs load the node config themselves (doctor reports a broken one).
        from runwasm.cli.app import run

        sys.exit(run(inv.args[inv.verb_index:]))


MAX_MESSAGE: Final = 1024  # characters: values in messages are cut well before this


def one_line(message: str) -> str:
    """The message as one line of bounded length that any stream can take: line breaks
    escaped, and lone surrogates (other than the escapes of non-UTF-8 path bytes,
    which the log shows as bytes) escaped too."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    try:
        message.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        message = "".join(ch if not "\ud800" <= ch < "\udc80" and not "\udd00" <= ch <= "\udfff"
                          else f"\\u{ord(ch):04x}" for ch in message)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return message


def _dispatch(inv: Invocation, config: NodeConfig, log: Log) -> int:
    delegate = delegates.find(config)
    if inv.verb is None and inv.globals.get("version") == "true":
        from runwasm.handler import info

        info.version(delegate)
    if _asks_help(inv):
        from runwasm.handler import info

        info.usage(delegate, inv.args)
    if inv.verb == "features":
        from runwasm.handler import info

        return info.features(delegate, inv.args[: inv.verb_index])
    if inv.verb in ("create", "run"):
        return _create(inv, config, log, delegate)
    if inv.verb == "exec":
        from runwasm.handler import exec_process

        new_args = exec_process.prepare_exec(delegate, inv)
        if new_args is not None:
            log.info(f"runwasm: exec in wasm container {inv.container_id} through the launcher")
            _hand_over(delegate, new_args, log)
    delegates.execute(delegate, inv.args)


def _create(inv: Invocation, config: NodeConfig, log: Log, delegate: str) -> NoReturn:
    from runwasm.handler import create

    if not inv.container_id:
        delegates.execute(delegate, inv.args)  # runc explains what is missing
    bundle = inv.option("bundle") or os.getcwd()
    decision = create.prepare(bundle, config, log, root=inv.root,
                              container_id=inv.container_id)
    try:
        _hand_over(delegate, inv.args, log)
    except RunwasmError:
        if decision.wasm:
            create.restore(bundle)  # runc never got it: leave the bundle as it was
        raise


def _asks_help(inv: Invocation) -> bool:
    """`runwasm`, `runwasm --help`/`-h`, `runwasm help`: runc's general help, which
    names only runc's verbs (`runwasm help create` stays runc's help for create)."""
    if inv.verb is None:
        return inv.globals.get("help") == "true" or not inv.globals
    return inv.verb in ("help", "h") and inv.verb_index == len(inv.args) - 1


def _hand_over(delegate: str, args: list[str], log: Log) -> NoReturn:
    """The node log's one entry for this call, then runc (which never returns here)."""
    log.flush()
    delegates.execute(delegate, args)
