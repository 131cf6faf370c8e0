"""Launcher entry: `python -I -S -c BOOT PLAN_JSON`, as process.args inside runc.

Reads the plan, loads only the engine it names, relays terminating signals, runs the
guest and exits with the guest's exact code (128+signal when a signal ended it).
"""

from __future__ import annotations

import os
import sys

from runwasm.engines.base import EXIT_LAUNCH


def _fail(message: str) -> None:
    sys.stderr.write(f"runwasm: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_LAUNCH)


def main() -> None:
    from runwasm.plan import Plan

    if len(sys.argv) != 2:
        _fail("launcher: expected one plan argument")
    try:
        plan = Plan.from_json(sys.argv[1])
    except (ValueError, KeyError, TypeError) as e:
        _fail(f"launcher: invalid plan: {e}")

    from runwasm.engines.base import EngineError
    from runwasm.engines.registry import load
    from runwasm.launcher.signals import SignalRelay

    try:
        engine = load(plan.engine)
    except (EngineError, ImportError) as e:
        _fail(f"engine {plan.engine}: {e}")
    relay = SignalRelay(engine.interrupt)
    relay.install()
    env = [tuple(item.split("=", 1)) for item in _environ() if "=" in item]
    try:
        code = engine.run(plan, env)  # type: ignore[arg-type]
    except EngineError as e:
        if relay.received is not None:
            code = 0
        else:
            _fail(str(e))
    code = relay.exit_code(code)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # Skip interpreter teardown: engine objects need no cleanup at exit.
    os._exit(code & 0xFF if code >= 0 else 1)


def _environ() -> list[str]:
    # The guest's environment is exactly process.env, which runc gave this process.
    return [k + "=" + v for k, v in os.environ.items()]
