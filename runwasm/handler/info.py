"""`--version` and `features`, which CRI-O asks of every handler at start-up."""

from __future__ import annotations

import subprocess
import sys

from runwasm import __version__, jsonfast
from runwasm.annotations import FEATURES
from runwasm.errors import RunwasmError
from runwasm.handler import delegate as delegates


def version(delegate: str) -> None:
    """runwasm's version line, then the delegate's own lines (by exec)."""
    sys.stdout.write(f"runwasm version {__version__}\n")
    sys.stdout.flush()
    delegates.execute(delegate, ["--version"])


def features(delegate: str, global_args: list[str]) -> int:
    """The delegate's runtime-spec features JSON plus runwasm's annotation keys."""
    result = subprocess.run([delegate, *global_args, "features"], stdout=subprocess.PIPE,
                            check=False)
    if result.returncode != 0:
        return result.returncode
    try:
        data = jsonfast.loads(result.stdout)
    except ValueError as e:
        raise RunwasmError(f"features: cannot parse {delegate} features: {e}") from None
    annotations = data.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    annotations.update(FEATURES)
    annotations["io.github.runwasm.version"] = __version__
    data["annotations"] = annotations
    import json  # pretty output like runc's; off the hot path

    sys.stdout.write(json.dumps(data, indent=4) + "\n")
    return 0
