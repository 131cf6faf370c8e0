"""Scan a runc command line without changing it.

runc (urfave/cli v1, Go's flag package) takes `-flag` and `--flag`, `--flag=value` and
`--flag value`, global flags before the verb, and verb flags before or after the
container id (`exec` stops at its id: what follows is the command). runwasm only needs
to know the verb, a few flag values and the id; the argv itself goes to the delegate
as it came.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

GLOBAL_VALUE_FLAGS: Final = frozenset({"root", "log", "log-format", "criu", "rootless"})
GLOBAL_BOOL_FLAGS: Final = frozenset({"debug", "systemd-cgroup", "help", "h", "version", "v"})

_CREATE_VALUES: Final = frozenset(
    {"bundle", "b", "console-socket", "pid-file", "preserve-fds", "pidfd-socket"}
)
_CREATE_BOOLS: Final = frozenset({"no-pivot", "no-new-keyring", "detach", "d", "keep"})
_EXEC_VALUES: Final = frozenset(
    {
        "console-socket", "cwd", "env", "e", "user", "u", "additional-gids", "g",
        "process", "p", "pid-file", "process-label", "apparmor", "cap", "c",
        "preserve-fds", "cgroup", "pidfd-socket",
    }
)
_EXEC_BOOLS: Final = frozenset(
    {"tty", "t", "detach", "d", "no-new-privs", "ignore-paused", "no-subreaper"}
)
VERB_FLAGS: Final = {
    "create": (_CREATE_VALUES, _CREATE_BOOLS),
    "run": (_CREATE_VALUES, _CREATE_BOOLS),
    "exec": (_EXEC_VALUES, _EXEC_BOOLS),
}
# runc's own verbs (runc 1.1): never runwasm's admin verbs, so the admin CLI's table is
# not even imported for them.
RUNC_VERBS: Final = frozenset({
    "checkpoint", "create", "delete", "events", "exec", "features", "kill", "list", "pause",
    "ps", "restore", "resume", "run", "spec", "start", "state", "update",
})
ALIASES: Final = {
    "b": "bundle", "d": "detach", "e": "env", "u": "user", "g": "additional-gids",
    "p": "process", "c": "cap", "t": "tty", "h": "help", "v": "version",
}


class Invocation:
    """What a runc command line asks for. `args` is the argv after the program name."""

    __slots__ = ("args", "globals", "verb", "verb_index", "options", "positionals",
                 "option_spans", "command_index")

    def __init__(self, args: list[str]) -> None:
        self.args = args
        # canonical flag name -> value ("true"/"false" for booleans); last one wins
        self.globals: dict[str, str] = {}
        self.verb: str | None = None
        self.verb_index = -1
        # canonical flag name -> every value given, in order
        self.options: dict[str, list[str]] = {}
        self.positionals: list[str] = []
        # canonical flag name -> (start, end) spans in args, for the exec rewrite
        self.option_spans: dict[str, list[tuple[int, int]]] = {}
        # exec: index in args where the command after the id starts (len(args) if none)
        self.command_index = len(args)

    @property
    def container_id(self) -> str | None:
        return self.positionals[0] if self.positionals else None

    def option(self, name: str) -> str | None:
        values = self.options.get(name)
        return values[-1] if values else None

    def flag(self, name: str) -> bool:
        return self.option(name) not in (None, "false")

    @property
    def root(self) -> str:
        return self.globals.get("root") or "/run/runc"

    @property
    def log_path(self) -> str:
        return self.globals.get("log", "")

    @property
    def log_format(self) -> str:
        return self.globals.get("log-format", "text")


def _split(token: str) -> tuple[str, str | None] | None:
    """`--name=value` -> (name, value); `-name` -> (name, None); not a flag -> None."""
    if len(token) < 2 or token[0] != "-" or token == "--":
        return None
    body = token[2:] if token.startswith("--") else token[1:]
    name, eq, value = body.partition("=")
    return name, (value if eq else None)


def scan(args: list[str]) -> Invocation:
    inv = Invocation(args)
    i = 0
    n = len(args)
    while i < n:
        split = _split(args[i])
        if split is None:
            break
        name, value = split
        name = ALIASES.get(name, name)
        if value is None and name in GLOBAL_VALUE_FLAGS and i + 1 < n:
            i += 1
            value = args[i]
        inv.globals[name] = "true" if value is None else value
        i += 1
    if i < n and args[i] == "--":
        i += 1
    if i >= n:
        return inv
    inv.verb = args[i]
    inv.verb_index = i
    values, bools = VERB_FLAGS.get(inv.verb, (frozenset(), frozenset()))
    stop_at_id = inv.verb == "exec"
    i += 1
    while i < n:
        token = args[i]
        if token == "--":
            if stop_at_id and not inv.positionals:
                inv.command_index = min(i + 2, n)
            inv.positionals.extend(args[i + 1:])
            break
        split = _split(token)
        if split is None:
            inv.positionals.append(token)
            if stop_at_id:
                inv.positionals.extend(args[i + 1:])
                inv.command_index = i + 1
                break
            i += 1
            continue
        start = i
        name, value = split
        name = ALIASES.get(name, name)
        if value is None and name in values:
            if i + 1 >= n:
                break  # a value flag missing its value: runc reports it
            i += 1
            value = args[i]
        # An unknown flag is taken as a boolean; runc judges it.
        inv.options.setdefault(name, []).append("true" if value is None else value)
        inv.option_spans.setdefault(name, []).append((start, i + 1))
        i += 1
    return inv
