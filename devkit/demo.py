"""`make demo`: one Wasm container and one Linux container through runwasm on runc.

Builds a WASI module from examples/modules/hello.c and a busybox rootfs, writes both
bundles under examples/build/, runs each with `.venv/bin/runwasm run` and prints what
it printed and its exit code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devkit import bundles

BUILD = bundles.REPO / "examples" / "build"
RUNWASM = bundles.REPO / ".venv" / "bin" / "runwasm"
ROOT = "/run/runwasm-demo"


def run(container_id: str, bundle: Path) -> int:
    subprocess.run([str(RUNWASM), "--root", ROOT, "delete", "--force", container_id],
                   stderr=subprocess.DEVNULL, check=False)
    print(f"$ runwasm --root {ROOT} run --bundle {bundle.relative_to(bundles.REPO)} "
          f"{container_id}", flush=True)
    code = subprocess.run([str(RUNWASM), "--root", ROOT, "run", "--bundle", str(bundle),
                           container_id], stdin=subprocess.DEVNULL, check=False).returncode
    print(f"[{container_id} exited with code {code}]\n", flush=True)
    return code


def main() -> int:
    module = bundles.c_module(bundles.MODULE_SOURCES / "hello.c", BUILD / "hello.wasm")
    wasm = BUILD / "bundles" / "wasm-hello"
    bundles.wasm_rootfs(wasm / "rootfs", {"/hello.wasm": module})
    bundles.bundle(wasm, args=["/hello.wasm", "7", "from-runwasm"],
                   env=["GREETING=hello from the pod spec"],
                   annotations={"module.wasm.image/variant": "compat"})
    linux = BUILD / "bundles" / "linux-busybox"
    bundles.busybox_rootfs(linux / "rootfs")
    bundles.bundle(linux, args=["sh", "-c", "echo Hello from a Linux container; exit 3"])
    codes = [run("demo-wasm", wasm), run("demo-linux", linux)]
    ok = codes == [7, 3]
    print("demo:", "both containers ran with their own exit codes" if ok
          else f"unexpected exit codes {codes} (expected [7, 3])")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
