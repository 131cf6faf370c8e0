"""runwasm.handler.argv.scan: what a runc command line asks for, without changing it."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runwasm.handler.argv import Invocation, scan

SETTINGS = settings(max_examples=200, deadline=None, database=None)

# ---------------------------------------------------------------------------------------
# Global flags


@pytest.mark.parametrize(
    "tokens",
    [
        ["--root", "/run/x"],
        ["--root=/run/x"],
        ["-root", "/run/x"],
        ["-root=/run/x"],
    ],
)
def test_global_root_forms(tokens: list[str]) -> None:
    inv = scan([*tokens, "state", "c1"])
    assert inv.globals == {"root": "/run/x"}
    assert inv.root == "/run/x"
    assert inv.verb == "state"
    assert inv.verb_index == len(tokens)
    assert inv.container_id == "c1"


def test_global_defaults() -> None:
    inv = scan(["state", "c1"])
    assert inv.globals == {}
    assert inv.root == "/run/runc"
    assert inv.log_path == ""
    assert inv.log_format == "text"


def test_global_log_and_format() -> None:
    inv = scan(["--log", "/var/log/r.log", "--log-format", "json", "delete", "c1"])
    assert inv.log_path == "/var/log/r.log"
    assert inv.log_format == "json"
    assert inv.globals == {"log": "/var/log/r.log", "log-format": "json"}
    assert inv.verb == "delete"
    assert inv.positionals == ["c1"]


def test_global_booleans_and_values_together() -> None:
    args = ["--debug", "--systemd-cgroup", "--rootless", "true", "--criu", "/usr/sbin/criu",
            "--root=/r", "start", "c1"]
    inv = scan(args)
    assert inv.globals == {
        "debug": "true", "systemd-cgroup": "true", "rootless": "true",
        "criu": "/usr/sbin/criu", "root": "/r",
    }
    assert inv.verb == "start"
    assert inv.verb_index == 7
    assert inv.container_id == "c1"


def test_global_rootless_takes_next_token_even_false() -> None:
    inv = scan(["--rootless", "false", "kill", "c1", "9"])
    assert inv.globals["rootless"] == "false"
    assert inv.verb == "kill"
    assert inv.positionals == ["c1", "9"]


def test_global_bool_with_explicit_value() -> None:
    inv = scan(["--debug=false", "--systemd-cgroup=true", "state", "c1"])
    assert inv.globals == {"debug": "false", "systemd-cgroup": "true"}


def test_global_last_one_wins() -> None:
    inv = scan(["--root", "/a", "--root=/b", "state", "c1"])
    assert inv.root == "/b"


@pytest.mark.parametrize("flag", ["--version", "-v", "-version"])
def test_version_without_verb(flag: str) -> None:
    inv = scan([flag])
    assert inv.verb is None
    assert inv.verb_index == -1
    assert inv.globals == {"version": "true"}
    assert inv.container_id is None


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_alias(flag: str) -> None:
    assert scan([flag]).globals == {"help": "true"}


def test_empty_argv() -> None:
    inv = scan([])
    assert inv.verb is None
    assert inv.verb_index == -1
    assert inv.positionals == []
    assert inv.command_index == 0


def test_double_dash_ends_global_flags() -> None:
    inv = scan(["--root", "/r", "--", "create", "--bundle", "/b", "c1"])
    assert inv.globals == {"root": "/r"}
    assert inv.verb == "create"
    assert inv.verb_index == 3
    assert inv.option("bundle") == "/b"
    assert inv.container_id == "c1"


def test_global_value_may_look_like_a_flag() -> None:
    # Go's flag package gives a value flag the next token, whatever it looks like.
    inv = scan(["--root", "--debug", "state", "c1"])
    assert inv.globals == {"root": "--debug"}
    assert inv.verb == "state"


def test_global_value_flag_at_end() -> None:
    inv = scan(["--root"])
    assert inv.verb is None
    assert inv.globals == {"root": "true"}


def test_args_kept_identical() -> None:
    args = ["--root=/r", "create", "--bundle", "/b", "c1"]
    copy = list(args)
    inv = scan(args)
    assert inv.args is args
    assert args == copy


# ---------------------------------------------------------------------------------------
# Verbs


def test_conmon_create_line() -> None:
    args = ["--systemd-cgroup", "--root=/run/runc", "create", "--bundle", "/b",
            "--pid-file", "/b/pidfile", "--no-pivot", "--console-socket", "/tmp/s.sock",
            "ctr-1"]
    inv = scan(args)
    assert inv.verb == "create"
    assert inv.verb_index == 2
    assert inv.globals == {"systemd-cgroup": "true", "root": "/run/runc"}
    assert inv.container_id == "ctr-1"
    assert inv.positionals == ["ctr-1"]
    assert inv.option("bundle") == "/b"
    assert inv.option("pid-file") == "/b/pidfile"
    assert inv.option("console-socket") == "/tmp/s.sock"
    assert inv.flag("no-pivot")
    assert not inv.flag("detach")
    assert inv.option_spans == {
        "bundle": [(3, 5)], "pid-file": [(5, 7)], "no-pivot": [(7, 8)],
        "console-socket": [(8, 10)],
    }
    assert inv.command_index == len(args)


def test_create_flags_after_id() -> None:
    inv = scan(["create", "c1", "-b", "/b", "--preserve-fds", "3", "--pid-file=/p"])
    assert inv.container_id == "c1"
    assert inv.positionals == ["c1"]
    assert inv.option("bundle") == "/b"
    assert inv.option("preserve-fds") == "3"
    assert inv.option("pid-file") == "/p"
    assert inv.option_spans["bundle"] == [(2, 4)]
    assert inv.option_spans["preserve-fds"] == [(4, 6)]
    assert inv.option_spans["pid-file"] == [(6, 7)]


def test_create_without_bundle() -> None:
    inv = scan(["create", "c1"])
    assert inv.option("bundle") is None
    assert inv.container_id == "c1"


def test_create_no_id() -> None:
    inv = scan(["create", "--bundle", "/b"])
    assert inv.container_id is None
    assert inv.option("bundle") == "/b"


def test_create_double_dash_before_id() -> None:
    inv = scan(["create", "--bundle", "/b", "--", "-weird-id"])
    assert inv.container_id == "-weird-id"
    assert inv.option("bundle") == "/b"


def test_create_flags_after_double_dash_are_positionals() -> None:
    inv = scan(["create", "c1", "--", "--bundle", "/b"])
    assert inv.positionals == ["c1", "--bundle", "/b"]
    assert inv.option("bundle") is None


def test_run_detach_alias() -> None:
    inv = scan(["run", "-d", "--bundle", "/b", "c1", "--keep"])
    assert inv.verb == "run"
    assert inv.flag("detach")
    assert inv.flag("keep")
    assert inv.option("bundle") == "/b"
    assert inv.container_id == "c1"


def test_bool_flag_does_not_take_id() -> None:
    inv = scan(["create", "--no-pivot", "c1", "--bundle", "/b"])
    assert inv.container_id == "c1"
    assert inv.option("bundle") == "/b"
    assert inv.options["no-pivot"] == ["true"]


def test_bool_flag_false() -> None:
    inv = scan(["create", "--no-pivot=false", "c1"])
    assert inv.options["no-pivot"] == ["false"]
    assert not inv.flag("no-pivot")


def test_value_flag_repeated_keeps_all_last_wins() -> None:
    inv = scan(["create", "-b", "/one", "c1", "--bundle=/two"])
    assert inv.options["bundle"] == ["/one", "/two"]
    assert inv.option("bundle") == "/two"
    assert inv.option_spans["bundle"] == [(1, 3), (4, 5)]


def test_value_flag_value_may_be_dash_dash() -> None:
    inv = scan(["create", "--bundle", "--", "c1"])
    assert inv.option("bundle") == "--"
    assert inv.container_id == "c1"


def test_value_flag_with_empty_value() -> None:
    inv = scan(["create", "--bundle=", "c1"])
    assert inv.options["bundle"] == [""]
    assert inv.option("bundle") == ""


def test_value_flag_missing_value_is_not_a_value() -> None:
    inv = scan(["create", "c1", "--bundle"])
    assert inv.container_id == "c1"
    assert inv.option("bundle") is None


@pytest.mark.parametrize(
    ("args", "verb", "positionals"),
    [
        (["start", "c1"], "start", ["c1"]),
        (["state", "c1"], "state", ["c1"]),
        (["kill", "c1", "15"], "kill", ["c1", "15"]),
        (["kill", "--all", "c1", "KILL"], "kill", ["c1", "KILL"]),
        (["delete", "--force", "c1"], "delete", ["c1"]),
        (["pause", "c1"], "pause", ["c1"]),
        (["resume", "c1"], "resume", ["c1"]),
        (["features"], "features", []),
        (["ps", "c1"], "ps", ["c1"]),
    ],
)
def test_other_verbs(args: list[str], verb: str, positionals: list[str]) -> None:
    inv = scan(["--root", "/r", *args])
    assert inv.verb == verb
    assert inv.verb_index == 2
    assert inv.positionals == positionals
    assert inv.globals == {"root": "/r"}


def test_delete_force_is_a_boolean_option() -> None:
    inv = scan(["delete", "--force", "c1"])
    assert inv.flag("force")
    assert inv.container_id == "c1"


def test_update_resources_reaches_verb() -> None:
    args = ["--root", "/r", "update", "--resources", "-", "c1"]
    inv = scan(args)
    assert inv.verb == "update"
    assert inv.verb_index == 2
    assert inv.args == args


# ---------------------------------------------------------------------------------------
# exec


def test_crio_exec_line() -> None:
    args = ["--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "--pid-file",
            "/tmp/pid", "c1"]
    inv = scan(args)
    assert inv.verb == "exec"
    assert inv.option("process") == "/tmp/p.json"
    assert inv.flag("detach")
    assert inv.option("pid-file") == "/tmp/pid"
    assert inv.container_id == "c1"
    assert inv.positionals == ["c1"]
    assert inv.option_spans["process"] == [(3, 5)]
    assert inv.command_index == len(args)


def test_exec_process_short_alias_and_equals() -> None:
    inv = scan(["exec", "-p", "/f.json", "c1"])
    assert inv.options == {"process": ["/f.json"]}
    assert inv.option_spans == {"process": [(1, 3)]}
    inv = scan(["exec", "--process=/g.json", "c1"])
    assert inv.option("process") == "/g.json"
    assert inv.option_spans == {"process": [(1, 2)]}


def test_exec_stops_at_id() -> None:
    args = ["exec", "-t", "--env", "A=1", "-e", "B=2", "--cwd", "/w", "-u", "1:2", "c1",
            "sh", "-c", "--bundle", "x", "--process", "y"]
    inv = scan(args)
    assert inv.container_id == "c1"
    assert inv.positionals == ["c1", "sh", "-c", "--bundle", "x", "--process", "y"]
    assert inv.command_index == 11
    assert args[inv.command_index:] == ["sh", "-c", "--bundle", "x", "--process", "y"]
    assert inv.options == {"tty": ["true"], "env": ["A=1", "B=2"], "cwd": ["/w"],
                           "user": ["1:2"]}
    assert inv.option("process") is None


def test_exec_double_dash_before_id() -> None:
    args = ["exec", "-p", "/f", "--", "c1", "sh", "-c", "x"]
    inv = scan(args)
    assert inv.container_id == "c1"
    assert inv.positionals == ["c1", "sh", "-c", "x"]
    assert inv.command_index == 5
    assert args[inv.command_index:] == ["sh", "-c", "x"]


def test_exec_double_dash_after_id_is_part_of_command() -> None:
    # runc's exec does not reorder: everything after the id is the command, `--` included.
    inv = scan(["exec", "c1", "--", "sh"])
    assert inv.positionals == ["c1", "--", "sh"]
    assert inv.command_index == 2


def test_exec_no_command() -> None:
    inv = scan(["exec", "c1"])
    assert inv.positionals == ["c1"]
    assert inv.command_index == 2


def test_exec_double_dash_at_end() -> None:
    inv = scan(["exec", "--"])
    assert inv.container_id is None
    assert inv.command_index == 2


# ---------------------------------------------------------------------------------------
# Properties

VALUES = st.text(max_size=10)
IDS = st.text(min_size=1, max_size=10).filter(lambda s: not s.startswith("-"))
Draw = Callable[..., Any]  # st.DrawFn or DataObject.draw


def _value_group(draw: Draw, names: list[str], value: str) -> list[str]:
    name = draw(st.sampled_from(names))
    dash = draw(st.sampled_from(["--", "-"]))
    if draw(st.booleans()):
        return [f"{dash}{name}={value}"]
    return [f"{dash}{name}", value]


def _bool_group(draw: Draw, names: list[str]) -> list[str]:
    name = draw(st.sampled_from(names))
    dash = draw(st.sampled_from(["--", "-"]))
    return [draw(st.sampled_from([f"{dash}{name}", f"{dash}{name}=true"]))]


GLOBAL_VALUES = {"root": ["root"], "log": ["log"], "log-format": ["log-format"],
                 "criu": ["criu"], "rootless": ["rootless"]}
GLOBAL_BOOLS = {"debug": ["debug"], "systemd-cgroup": ["systemd-cgroup"]}


@st.composite
def global_flags(draw: st.DrawFn) -> tuple[list[str], dict[str, str]]:
    """Global flag groups in any order and form; (tokens, expected globals)."""
    groups: list[list[str]] = []
    expected: dict[str, str] = {}
    for canonical, names in GLOBAL_VALUES.items():
        if draw(st.booleans()):
            value = draw(VALUES)
            groups.append(_value_group(draw, names, value))
            expected[canonical] = value
    for canonical, names in GLOBAL_BOOLS.items():
        if draw(st.booleans()):
            groups.append(_bool_group(draw, names))
            expected[canonical] = "true"
    groups = draw(st.permutations(groups))
    return [t for g in groups for t in g], expected


CREATE_VALUES = {"bundle": ["bundle", "b"], "pid-file": ["pid-file"],
                 "console-socket": ["console-socket"], "preserve-fds": ["preserve-fds"],
                 "pidfd-socket": ["pidfd-socket"]}
CREATE_BOOLS = {"no-pivot": ["no-pivot"], "no-new-keyring": ["no-new-keyring"]}
RUN_BOOLS = {"detach": ["detach", "d"], "keep": ["keep"]}


@st.composite
def create_line(draw: st.DrawFn) -> tuple[list[str], dict[str, object]]:
    verb = draw(st.sampled_from(["create", "run"]))
    global_tokens, expected_globals = draw(global_flags())
    groups: list[tuple[str, list[str]]] = []
    values: dict[str, str] = {}
    for canonical, names in CREATE_VALUES.items():
        if draw(st.booleans()):
            value = draw(VALUES)
            groups.append((canonical, _value_group(draw, names, value)))
            values[canonical] = value
    bools = dict(CREATE_BOOLS, **(RUN_BOOLS if verb == "run" else {}))
    flags: set[str] = set()
    for canonical, names in bools.items():
        if draw(st.booleans()):
            groups.append((canonical, _bool_group(draw, names)))
            flags.add(canonical)
    groups = draw(st.permutations(groups))
    container_id = draw(IDS)
    at = draw(st.integers(0, len(groups)))
    use_dashdash = at == len(groups) and draw(st.booleans())
    tokens = [*global_tokens, verb]
    spans: dict[str, list[tuple[int, int]]] = {}
    for k, (canonical, group) in enumerate(groups):
        if k == at:
            tokens.append(container_id)
        spans[canonical] = [(len(tokens), len(tokens) + len(group))]
        tokens.extend(group)
    if at == len(groups):
        if use_dashdash:
            tokens.append("--")
        tokens.append(container_id)
    return tokens, {
        "verb": verb, "verb_index": len(global_tokens), "globals": expected_globals,
        "id": container_id, "values": values, "flags": flags, "spans": spans,
    }


@SETTINGS
@given(create_line())
def test_create_any_order_any_form(line: tuple[list[str], dict[str, object]]) -> None:
    args, want = line
    inv = scan(args)
    assert inv.verb == want["verb"]
    assert inv.verb_index == want["verb_index"]
    assert inv.globals == want["globals"]
    assert inv.container_id == want["id"]
    assert inv.positionals == [want["id"]]
    values = want["values"]
    assert isinstance(values, dict)
    for name in ("bundle", "pid-file", "console-socket", "preserve-fds", "pidfd-socket"):
        assert inv.option(name) == values.get(name)
    flags = want["flags"]
    assert isinstance(flags, set)
    for name in ("no-pivot", "no-new-keyring", "detach", "keep"):
        assert inv.flag(name) == (name in flags)
    assert inv.option_spans == want["spans"]


@SETTINGS
@given(create_line(), st.data())
def test_equals_and_separate_forms_are_equivalent(
    line: tuple[list[str], dict[str, object]], data: st.DataObject
) -> None:
    """Rewriting every `--flag=value` as `--flag value` (and back) changes nothing seen."""
    args, _ = line
    base = scan(args)
    rewritten: list[str] = []
    i = base.verb_index + 1
    rewritten.extend(args[:i])
    spans = sorted(s for spans in base.option_spans.values() for s in spans)
    for start, end in spans:
        rewritten.extend(args[i:start])
        group = args[start:end]
        if len(group) == 2:
            group = [f"{group[0]}={group[1]}"]
        elif "=" in group[0] and data.draw(st.booleans()):
            name, _, value = group[0].partition("=")
            if name.lstrip("-") in ("bundle", "b", "pid-file", "console-socket",
                                    "preserve-fds", "pidfd-socket"):
                group = [name, value]
        rewritten.extend(group)
        i = end
    rewritten.extend(args[i:])
    other = scan(rewritten)
    assert other.container_id == base.container_id
    assert other.options == base.options
    assert other.globals == base.globals
    assert other.verb == base.verb


EXEC_VALUES = {"process": ["process", "p"], "pid-file": ["pid-file"],
               "console-socket": ["console-socket"], "cwd": ["cwd"], "user": ["user", "u"],
               "cap": ["cap", "c"]}
EXEC_BOOLS = {"detach": ["detach", "d"], "tty": ["tty", "t"], "no-new-privs": ["no-new-privs"]}


@SETTINGS
@given(global_flags(), st.data(), IDS, st.lists(st.text(max_size=8), max_size=6))
def test_exec_any_order_command_after_id(
    globals_: tuple[list[str], dict[str, str]], data: st.DataObject, container_id: str,
    command: list[str],
) -> None:
    global_tokens, expected_globals = globals_
    groups: list[list[str]] = []
    values: dict[str, str] = {}
    for canonical, names in EXEC_VALUES.items():
        if data.draw(st.booleans()):
            value = data.draw(VALUES)
            groups.append(_value_group(data.draw, names, value))
            values[canonical] = value
    flags: set[str] = set()
    for canonical, names in EXEC_BOOLS.items():
        if data.draw(st.booleans()):
            groups.append(_bool_group(data.draw, names))
            flags.add(canonical)
    groups = data.draw(st.permutations(groups))
    tokens = [*global_tokens, "exec", *(t for g in groups for t in g)]
    if data.draw(st.booleans()):
        tokens.append("--")
    tokens.append(container_id)
    id_at = len(tokens) - 1
    tokens.extend(command)

    inv = scan(tokens)
    assert inv.verb == "exec"
    assert inv.globals == expected_globals
    assert inv.container_id == container_id
    assert inv.positionals == [container_id, *command]
    assert inv.command_index == id_at + 1
    assert tokens[inv.command_index:] == command
    for name in EXEC_VALUES:
        assert inv.option(name) == values.get(name)
    for name in EXEC_BOOLS:
        assert inv.flag(name) == (name in flags)


INTERESTING = st.sampled_from([
    "--", "-", "create", "run", "exec", "state", "--root", "--root=", "-b", "--bundle",
    "-p", "--process", "--pid-file", "--no-pivot", "--log", "-=", "--=x", "=", "",
])


def _check_invariants(args: list[str], inv: Invocation) -> None:
    n = len(args)
    assert inv.args is args
    assert -1 <= inv.verb_index < n
    if inv.verb is None:
        assert inv.verb_index == -1
        assert inv.positionals == []
        assert inv.options == {}
    else:
        assert args[inv.verb_index] == inv.verb
    assert 0 <= inv.command_index <= n
    for name, spans in inv.option_spans.items():
        assert len(spans) == len(inv.options[name])
        for start, end in spans:
            assert inv.verb_index < start < end <= n
            assert args[start].startswith("-")
    # positionals appear in argv, in order, after the verb
    rest = iter(args[inv.verb_index + 1:])
    assert all(any(p == a for a in rest) for p in inv.positionals)
    cid: str | None = inv.container_id
    assert cid is None or cid in args


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=12), INTERESTING), max_size=14))
def test_scan_never_raises(args: list[str]) -> None:
    inv = scan(args)
    _check_invariants(args, inv)


def test_no_admin_verb_is_a_runc_verb() -> None:
    from runwasm.cli import VERBS
    from runwasm.handler.argv import RUNC_VERBS

    assert not RUNC_VERBS & set(VERBS)
