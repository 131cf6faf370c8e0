"""Launcher entry: `python -I -S -c BOOT PLAN_JSON`, as process.args inside runc.

Reads the plan, loads only the engine it names, takes over terminating signals and the
timeout, runs the guest and exits with the guest's exact code (or 128+signal, or one of
runwasm's documented codes when a limit ended it).

On the default engine's path (this module, signals, the plan, the registry, the wasmtime
adapter and its binding) nothing imports `os`: its `environ` mapping alone loads
`_collections_abc`, 0.7 ms of every Wasm start. They use `posix`, the C module `os`
wraps; CLI engines' code (engines/child.py) imports `os` as usual.
"""

from __future__ import annotations

import posix
import sys

from runwasm.engines.base import EXIT_LAUNCH


def _fail(message: str) -> None:
    sys.stderr.write(f"runwasm: {message}\n")
    sys.stderr.flush()
    posix._exit(EXIT_LAUNCH)


def main() -> None:
    from runwasm.plan import Plan, guest_environment

    if len(sys.argv) != 2:
        _fail("launcher: expected one plan argument")
    try:
        plan = Plan.from_json(sys.argv[1])
    except (ValueError, KeyError, TypeError) as e:
        _fail(f"launcher: invalid plan: {e}")

    from runwasm.engines.base import EngineError
    from runwasm.engines.registry import load
    from runwasm.launcher.signals import Stopper

    try:
        engine = load(plan.engine)
    except (EngineError, ImportError) as e:
        _fail(f"engine {plan.engine}: {e}")
    stopper = Stopper(engine)
    stopper.install(plan.limits.timeout)
    # The guest's environment is exactly process.env: runc gave it to this process, and
    # the plan says what runc and the interpreter added to it.
    env = guest_environment(environ(), plan.restore_env)
    try:
        code = engine.run(plan, env)
    except EngineError as e:
        if stopper.received is None and stopper.timed_out is None:
            _fail(str(e))
        code = 0
    code = stopper.exit_code(code)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # Skip interpreter teardown: engine objects need no cleanup at exit.
    posix._exit(code & 0xFF if code >= 0 else 1)


def environ() -> dict[str, str]:
    """This process's environment, in order, decoded as os.environ decodes it."""
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    return {name.decode(encoding, errors): value.decode(encoding, errors)
            for name, value in posix.environ.items()}
