"""The built packages: names, metadata, file lists, modes, conffiles, scripts, lintian."""

from __future__ import annotations

import gzip
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pkgtest import DEB_ONLY, REPO, Packages, deb_entries, rpm_entries, sh

CONFIGS = REPO / "configs"
# A maintainer script never restarts a service nor touches containers.
FORBIDDEN_IN_SCRIPTS = re.compile(
    r"\b(systemctl|service|invoke-rc\.d|deb-systemd-invoke|deb-systemd-helper|runc|crun|"
    r"crictl|kill|pkill|killall)\b")
MKDIRS = "install -d -m 0700 -o root -g root /var/lib/runwasm /var/lib/runwasm/cache"


def config_files() -> dict[str, Path]:
    """Installed path -> source in configs/, as packaging/nfpm.yaml maps them."""
    mapping = {"/etc/runwasm/config.toml": CONFIGS / "config.toml"}
    for conf in sorted((CONFIGS / "crio").glob("*.conf")):
        mapping[f"/etc/crio/crio.conf.d/{conf.name}"] = conf
    for source in sorted(CONFIGS.rglob("*")):
        if source.is_file():
            mapping[f"/usr/share/runwasm/{source.relative_to(CONFIGS)}"] = source
    return mapping


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("packaging_build", REPO / "packaging" /
                                                  "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["packaging_build"] = module
    spec.loader.exec_module(module)
    return module


def test_file_names_carry_the_version(packages: Packages) -> None:
    assert packages.deb.name == f"runwasm_{packages.version}_amd64.deb"
    assert packages.rpm.name == f"runwasm-{packages.version}.x86_64.rpm"


def test_deb_metadata(packages: Packages) -> None:
    info = sh("dpkg-deb", "-I", str(packages.deb))
    fields = dict(re.findall(r"^ (\S+): (.*)$", info, re.M))
    assert fields["Package"] == "runwasm"
    assert fields["Version"] == packages.version
    assert fields["Architecture"] == "amd64"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    assert "python3 (>= 3.9)" in depends
    assert "runc | crun" in depends
    assert not any(engine in fields["Depends"] for engine in ("wasmtime", "wasmedge", "wasmer"))
    assert {"wasmtime", "wasmedge", "wasmer"} <= {
        s.strip() for s in fields["Suggests"].split(",")}
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*\s+{script}\s", info, re.M), script


def test_deb_conffiles_are_the_node_config_and_the_crio_dropin(
        packages: Packages, tmp_path: Path) -> None:
    sh("dpkg-deb", "-e", str(packages.deb), str(tmp_path / "control"))
    conffiles = (tmp_path / "control" / "conffiles").read_text().split()
    expected = ["/etc/runwasm/config.toml"] + [
        f"/etc/crio/crio.conf.d/{c.name}" for c in sorted((CONFIGS / "crio").glob("*.conf"))]
    assert sorted(conffiles) == sorted(expected)
    assert len(expected) >= 2, "configs/crio/ has no *.conf drop-in"


def test_deb_files_modes_and_owners(packages: Packages) -> None:
    entries = deb_entries(packages.deb)
    assert {owner for _perms, owner in entries.values()} == {"root/root"}
    assert entries["/usr/bin/runwasm"][0] == "-rwxr-xr-x"
    lib = {p: perms for p, (perms, _) in entries.items() if p.startswith("/usr/lib/runwasm/")}
    for package in ("runwasm", "wasmtime", "typer", "click", "rich", "tomlkit"):
        assert f"/usr/lib/runwasm/{package}/__init__.py" in lib, package
    assert "/usr/lib/runwasm/runwasm/handler/main.py" in lib
    for path, perms in lib.items():
        assert perms in ("-rw-r--r--", "drwxr-xr-x"), (path, perms)
        assert "__pycache__" not in path and not path.endswith((".pyc", ".pyo")), path
    assert not any(p.startswith("/usr/lib/runwasm/bin") for p in lib)
    for path in entries:
        assert "site-packages" not in path and "dist-packages" not in path, path
        assert path.startswith(("/usr/bin", "/usr/lib/runwasm", "/usr/share/runwasm",
                                "/usr/share/doc/runwasm", "/usr/share/man/man1",
                                "/usr/share/lintian/overrides", "/etc/runwasm", "/etc/crio"))\
            or path in ("/", "/etc", "/usr", "/usr/lib", "/usr/share", "/usr/share/doc",
                        "/usr/share/man", "/usr/share/lintian"), path
    for path in config_files():
        assert entries[path] == ("-rw-r--r--", "root/root"), path
    for path in ("/usr/share/man/man1/runwasm.1.gz", "/usr/share/doc/runwasm/copyright",
                 "/usr/share/doc/runwasm/changelog.gz"):
        assert entries[path][0] == "-rw-r--r--", path
    assert "/var/lib/runwasm" not in entries  # made by postinst, root-only


def test_deb_contents_match_their_sources(unpacked: Path) -> None:
    for path, source in config_files().items():
        assert (unpacked / path.lstrip("/")).read_bytes() == source.read_bytes(), path
    sys.path.insert(0, str(REPO))
    from runwasm import entry

    script = (unpacked / "usr/bin/runwasm").read_text()
    assert script == entry.script("/usr/bin/python3", ["/usr/lib/runwasm"])
    assert script.startswith("#!/usr/bin/python3 -IS\n")


def test_vendored_wheels_are_version_independent(unpacked: Path) -> None:
    build = build_module()
    dists = build.check_vendored(unpacked / "usr/lib/runwasm")
    names = {d.split("-")[0].lower() for d in dists}
    assert {"runwasm", "wasmtime", "typer", "click", "rich", "tomlkit"} <= names
    typer = next(d for d in dists if d.lower().startswith("typer-"))
    click = next(d for d in dists if d.lower().startswith("click-"))
    assert typer == "typer-0.12.5"
    assert tuple(int(x) for x in click.split("-")[1].split(".")[:2]) < (8, 2)


@pytest.mark.parametrize("case", ["cp311 wheel", "extension module", "bytecode", "no tag"])
def test_build_refuses_version_specific_files(case: str, tmp_path: Path) -> None:
    build = build_module()
    lib = tmp_path / "lib"
    info = lib / "demo-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: py3-none-any\n")
    assert build.check_vendored(lib) == ["demo-1.0"]
    if case == "cp311 wheel":
        (info / "WHEEL").write_text("Tag: cp311-cp311-manylinux_2_17_x86_64\n")
    elif case == "extension module":
        (lib / "demo").mkdir()
        (lib / "demo" / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    elif case == "bytecode":
        (lib / "demo" / "__pycache__").mkdir(parents=True)
    else:
        (info / "WHEEL").write_text("Wheel-Version: 1.0\n")
    with pytest.raises(build.BuildError):
        build.check_vendored(lib)
    assert build.version_independent("py2.py3-none-any")
    assert build.version_independent("py3-none-manylinux1_x86_64")
    assert not build.version_independent("cp39-abi3-manylinux_2_17_x86_64")
    assert not build.version_independent("py3-none-macosx_11_0_arm64")


def test_maintainer_scripts_never_restart_services_or_touch_containers(
        packages: Packages, tmp_path: Path) -> None:
    sh("dpkg-deb", "-e", str(packages.deb), str(tmp_path / "control"))
    scripts = {name: (tmp_path / "control" / name).read_text()
               for name in ("postinst", "prerm", "postrm")}
    scripts["rpm"] = sh("rpm", "-qp", "--scripts", str(packages.rpm))
    for name, text in scripts.items():
        code = "\n".join(line.split("#")[0] for line in text.splitlines()
                         if not line.lstrip().startswith(("#", "echo")))
        assert not FORBIDDEN_IN_SCRIPTS.search(code), (name, FORBIDDEN_IN_SCRIPTS.search(code))
    assert MKDIRS in scripts["postinst"]
    assert "rm -rf /var/lib/runwasm" in scripts["postrm"].split("purge)")[1].split(";;")[0]
    assert "compileall" in scripts["postinst"] and "__pycache__" in scripts["prerm"]
    rpm = scripts["rpm"]
    for scriptlet in ("postinstall", "preuninstall", "postuninstall", "posttrans"):
        assert f"{scriptlet} scriptlet" in rpm, scriptlet
    assert MKDIRS in rpm


def test_rpm_metadata(packages: Packages) -> None:
    info = sh("rpm", "-qip", str(packages.rpm))
    fields = dict(re.findall(r"^(\w[\w ]*?)\s*: (.*)$", info, re.M))
    assert fields["Name"] == "runwasm"
    assert fields["Version"] == packages.version
    assert fields["Architecture"] == "x86_64"
    assert fields["License"] == "Apache-2.0"
    requires = sh("rpm", "-qp", "--requires", str(packages.rpm)).splitlines()
    assert "python3 >= 3.9" in requires
    assert "(runc or crun)" in requires
    assert not any(e in " ".join(requires) for e in ("wasmtime", "wasmedge", "wasmer"))
    suggests = sh("rpm", "-qp", "--suggests", str(packages.rpm)).split()
    assert {"wasmtime", "wasmedge", "wasmer"} <= set(suggests)
    flags = sh("rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags}|%{FILENAMES}\n]",
               str(packages.rpm))
    configs = {path: flag for flag, path in (line.split("|", 1) for line in
                                             flags.splitlines()) if "c" in flag}
    expected = {p for p in config_files() if p.startswith("/etc/")}
    assert set(configs) == expected
    assert all("n" in flag for flag in configs.values()), configs  # %config(noreplace)


def test_rpm_holds_the_same_files_as_the_deb(packages: Packages) -> None:
    deb = {p: v for p, v in deb_entries(packages.deb).items() if not v[0].startswith("d")}
    rpm = {p: v for p, v in rpm_entries(packages.rpm).items() if not v[0].startswith("d")}
    assert set(deb) - set(rpm) == DEB_ONLY
    assert set(rpm) - set(deb) == set()
    for path, (perms, owner) in rpm.items():
        assert (perms, owner) == deb[path], path


def test_lintian_finds_no_errors_or_unexplained_warnings(packages: Packages) -> None:
    result = subprocess.run(["lintian", "--fail-on", "error,warning", str(packages.deb)],
                            capture_output=True, text=True, check=False)
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == [] and result.returncode == 0, result.stdout + result.stderr
    readme = (REPO / "packaging" / "README.md").read_text()
    overrides = (REPO / "packaging" / "lintian-overrides").read_text()
    for tag in re.findall(r"^runwasm: (\S+)", overrides, re.M):
        assert tag in readme, f"lintian override {tag} is not explained in packaging/README.md"


def test_man_page_explains_the_runc_surface_and_every_admin_verb(unpacked: Path) -> None:
    page = gzip.decompress((unpacked / "usr/share/man/man1/runwasm.1.gz").read_bytes()).decode()
    for section in ("NAME", "SYNOPSIS", "RUNC\\-COMPATIBLE COMMANDS", "ADMIN COMMANDS",
                    "FILES", "EXIT STATUS"):
        assert f".SH {section}" in page, section
    for verb in ("create", "run", "exec", "start", "state", "kill", "delete", "features"):
        assert re.search(rf"\b{verb}\b", page), verb
    sys.path.insert(0, str(unpacked / "usr/lib/runwasm"))
    try:
        spec = importlib.util.spec_from_file_location(
            "packaged_cli", unpacked / "usr/lib/runwasm/runwasm/cli/__init__.py")
        assert spec and spec.loader
        cli = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cli)
    finally:
        sys.path.remove(str(unpacked / "usr/lib/runwasm"))
    for verb in cli.VERBS:
        assert re.search(rf"^\.TP\n\.B {re.escape(verb)}\b", page, re.M), \
            f"the man page does not explain the admin verb {verb!r}"
    man = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", "-P", "cat",
                          str(unpacked / "usr/share/man/man1/runwasm.1.gz")],
                         capture_output=True, text=True, check=False,
                         env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    assert man.returncode == 0 and man.stderr == "", man.stderr
    assert "runc-compatible OCI runtime" in man.stdout


def test_the_same_commit_builds_the_same_deb(packages: Packages, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "packaging" / "build.py"), "--out",
                             str(tmp_path), "--work", str(tmp_path / "work"), "--packager",
                             "deb"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    again = tmp_path / packages.deb.name
    assert again.read_bytes() == packages.deb.read_bytes()
    shutil.rmtree(tmp_path)
