"""runwasm.plan: the plan the handler gives the launcher, as JSON in argv."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runwasm import plan as plan_module
from runwasm.plan import Plan


def _plan(**overrides: object) -> Plan:
    fields: dict[str, object] = {
        "engine": "wasmtime", "module": "/.app/app.wasm", "kind": "module",
        "args": ["/app.wasm", "--flag", "é \"q\"\n"], "cwd": "/.app/srv", "readonly": True,
    }
    fields.update(overrides)
    return Plan(**fields)  # type: ignore[arg-type]


def _fields(p: Plan) -> tuple[object, ...]:
    return (p.engine, p.module, p.kind, p.args, p.cwd, p.readonly)


def test_app_root() -> None:
    assert plan_module.APP_ROOT == "/.app"


def test_round_trip() -> None:
    original = _plan()
    text = original.to_json()
    again = Plan.from_json(text)
    assert _fields(again) == _fields(original)
    assert isinstance(again.args, list)


def test_json_shape() -> None:
    text = _plan(readonly=False).to_json()
    assert text.isascii()
    assert "\n" not in text  # one argv entry, one line
    data = json.loads(text)
    assert data == {
        "v": plan_module.VERSION, "engine": "wasmtime", "module": "/.app/app.wasm",
        "kind": "module", "args": ["/app.wasm", "--flag", "é \"q\"\n"], "cwd": "/.app/srv",
        "readonly": False, "limits": {"max_memory": None, "timeout": None, "fuel": None},
        "executable": "", "options": [], "sockets": False, "artifact": "", "invoke": "",
        "engine_env": [],
        "restore_env": {"HOME": None, "LC_CTYPE": None},
    }


def test_limits_and_engine_settings_round_trip() -> None:
    plan = plan_module.Plan(engine="wasmtime-cli", module="/.app/m.wasm", kind="component",
                            args=["m"], cwd="/.app", readonly=True,
                            limits=plan_module.Limits(64 << 20, 1.5, 1000),
                            executable="/usr/bin/wasmtime", options=["-O", "opt-level=2"],
                            sockets=True)
    back = plan_module.Plan.from_json(plan.to_json())
    assert back.limits.to_dict() == {"max_memory": 64 << 20, "timeout": 1.5, "fuel": 1000}
    assert (back.executable, back.options, back.sockets) == (
        "/usr/bin/wasmtime", ["-O", "opt-level=2"], True)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.sampled_from(["wasmtime", "wasmedge", "wasmer"]),
    st.text(),
    st.sampled_from(["module", "component", "wat"]),
    st.lists(st.text(), max_size=6),
    st.text(),
    st.booleans(),
)
def test_round_trip_any(engine: str, module: str, kind: str, args: list[str], cwd: str,
                        readonly: bool) -> None:
    p = Plan(engine=engine, module=module, kind=kind, args=args, cwd=cwd, readonly=readonly)
    assert _fields(Plan.from_json(p.to_json())) == (engine, module, kind, args, cwd, readonly)


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_version_mismatch(version: object) -> None:
    data = json.loads(_plan().to_json())
    data["v"] = version
    with pytest.raises(ValueError, match="plan version"):
        Plan.from_json(json.dumps(data))


def test_version_missing() -> None:
    data = json.loads(_plan().to_json())
    del data["v"]
    with pytest.raises(ValueError, match="expected 1"):
        Plan.from_json(json.dumps(data))


def test_malformed_json_is_value_error() -> None:
    with pytest.raises(ValueError):
        Plan.from_json('{"v": 1, "engine": ')


def test_missing_field_is_key_error() -> None:
    data = json.loads(_plan().to_json())
    del data["module"]
    with pytest.raises(KeyError):
        Plan.from_json(json.dumps(data))


@pytest.mark.parametrize("text", ["[]", '"plan"', "1", "null"])
def test_non_object_plan_is_a_caught_error(text: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        Plan.from_json(text)


@pytest.mark.parametrize(("env", "restore"), [
    ([], {"HOME": None, "LC_CTYPE": None}),
    (["PATH=/bin", "HOME=/home/app"], {"LC_CTYPE": None}),
    (["HOME="], {"HOME": "", "LC_CTYPE": None}),
    (["LC_CTYPE=C", "LC_CTYPE=POSIX", "HOME=/h"], {"LC_CTYPE": "POSIX"}),
    (["HOME=/a", "HOME="], {"HOME": "", "LC_CTYPE": None}),
    (["HOME", "LC_CTYPE"], {"HOME": None, "LC_CTYPE": None}),  # no "=": not a variable
])
def test_startup_restore(env: list[str], restore: dict[str, str | None]) -> None:
    assert plan_module.startup_restore(env) == restore
    assert Plan.from_json(_plan(env=env).to_json()).restore_env == restore


def test_guest_environment_undoes_only_the_start_up() -> None:
    # As runc and the interpreter leave it: HOME appended, LC_CTYPE coerced in place.
    environ = {"A": "1", "LC_CTYPE": "C.UTF-8", "B": "", "HOME": "/"}
    restore = plan_module.startup_restore(["A=1", "LC_CTYPE=C", "B="])
    assert plan_module.guest_environment(environ, restore) == [
        ("A", "1"), ("LC_CTYPE", "C"), ("B", "")]
    restore = plan_module.startup_restore(["A=1", "B=", "HOME=/root"])
    assert plan_module.guest_environment({"A": "1", "B": "", "HOME": "/root",
                                          "LC_CTYPE": "C.UTF-8"}, restore) == [
        ("A", "1"), ("B", ""), ("HOME", "/root")]


def test_old_plan_without_restore_env_changes_nothing() -> None:
    data = json.loads(_plan().to_json())
    del data["restore_env"]
    plan = Plan.from_json(json.dumps(data))
    assert plan_module.guest_environment({"HOME": "/"}, plan.restore_env) == [("HOME", "/")]


def test_restore_env_must_be_an_object() -> None:
    data = json.loads(_plan().to_json())
    data["restore_env"] = ["HOME"]
    with pytest.raises(ValueError, match="restore_env"):
        Plan.from_json(json.dumps(data))
