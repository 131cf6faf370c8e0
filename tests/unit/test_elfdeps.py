"""runwasm.elfdeps against the real dynamic loader: programs built here with clang, and
the node's own binaries, resolved as `ldd` (glibc's loader in list mode) resolves them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runwasm import elfdeps

CLANG = shutil.which("clang")
LDD = shutil.which("ldd")
needs_clang = pytest.mark.skipif(CLANG is None, reason="clang not installed")


def cc(out: Path, source: str, *flags: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run([str(CLANG), "-o", str(out), str(src), *flags], check=True)
    return out


def ldd(program: Path | str) -> set[str]:
    """The real paths of what the loader loads for `program` (vDSO aside)."""
    out = subprocess.run([str(LDD), str(program)], capture_output=True, text=True,
                         check=False).stdout
    found = {os.path.realpath(str(program))}
    for line in out.splitlines():
        match = re.search(r"(?:=> )?(/\S+) \(0x", line)
        if match:
            found.add(os.path.realpath(match.group(1)))
    return found


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """prefix/bin/app (RUNPATH $ORIGIN/../lib) -> prefix/lib/liba.so (DT_RPATH to a 32-bit
    libb first, then the right one) -> other/libb.so."""
    other, wrong = tmp_path / "other", tmp_path / "wrong-class"
    libb = cc(other / "libb.so", "int b(void){return 2;}\n", "-shared", "-fPIC")
    cc(wrong / "libb.so", "int b(void){return 2;}\n", "-shared", "-m32", "-nostdlib")
    liba = cc(tmp_path / "prefix/lib/liba.so", "int b(void); int a(void){return b()+1;}\n",
              "-shared", "-fPIC", f"-L{other}", "-lb",
              f"-Wl,--disable-new-dtags,-rpath,{wrong}:{other}")
    app = cc(tmp_path / "prefix/bin/app", "int a(void); int main(void){return a();}\n",
             f"-L{liba.parent}", "-la", "-Wl,-rpath,$ORIGIN/../lib")
    return {"app": app, "liba": liba, "libb": libb, "wrong": wrong / "libb.so"}


@needs_clang
def test_read_dynamic_section(tree: dict[str, Path]) -> None:
    app = elfdeps.read(str(tree["app"]))
    assert app.needed == ["liba.so", "libc.so.6"]
    assert app.runpath == ["$ORIGIN/../lib"] and app.rpath == []
    assert os.path.basename(app.interpreter).startswith("ld-")  # e.g. ld-linux-x86-64.so.2
    liba = elfdeps.read(str(tree["liba"]))
    assert liba.rpath == [str(tree["wrong"].parent), str(tree["libb"].parent)]
    assert liba.runpath == []
    assert elfdeps.read(str(tree["wrong"])).kind[0] == 1  # ELFCLASS32
    assert subprocess.run([str(tree["app"])], check=False).returncode == 3


@needs_clang
@pytest.mark.skipif(LDD is None, reason="ldd not installed")
def test_loaded_matches_the_loader(tree: dict[str, Path]) -> None:
    paths, missing = elfdeps.Resolver().loaded(str(tree["app"]))
    assert missing == []
    assert paths[0] == str(tree["app"])
    assert str(tree["liba"]) in paths and str(tree["libb"]) in paths
    assert str(tree["wrong"]) not in paths  # another ELF class: the loader skips it
    assert {os.path.realpath(p) for p in paths} == ldd(tree["app"])


@needs_clang
def test_missing_library_is_named_with_who_needs_it(tree: dict[str, Path]) -> None:
    tree["libb"].unlink()
    _, missing = elfdeps.Resolver().loaded(str(tree["app"]))
    assert missing == [("libb.so", str(tree["liba"]))]


@needs_clang
def test_consulted_covers_the_directories_searched(tree: dict[str, Path]) -> None:
    resolver = elfdeps.Resolver()
    resolver.loaded(str(tree["app"]))
    consulted = resolver.consulted()
    for path in (tree["app"], tree["liba"], tree["wrong"].parent, tree["libb"].parent):
        assert str(path) in consulted
    assert elfdeps.LD_SO_CACHE in consulted


@pytest.mark.skipif(LDD is None, reason="ldd not installed")
def test_node_binaries_match_ldd() -> None:
    """Every dynamically linked program in /usr/bin (a sample), against the loader."""
    checked = 0
    resolver = elfdeps.Resolver()
    for name in sorted(os.listdir("/usr/bin"))[::7]:
        path = os.path.join("/usr/bin", name)
        try:
            obj = elfdeps.read(path)
        except elfdeps.ElfError:
            continue
        if not obj.needed or os.path.islink(path):
            continue
        paths, missing = resolver.loaded(path)
        assert missing == [], path
        assert {os.path.realpath(p) for p in paths} == ldd(path), path
        checked += 1
    assert checked >= 10


def test_ld_so_cache_matches_ldconfig() -> None:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not os.path.exists(elfdeps.LD_SO_CACHE) or not os.access(ldconfig, os.X_OK):
        pytest.skip("no ld.so.cache or ldconfig here")
    listed: dict[str, list[str]] = {}
    for line in subprocess.run([ldconfig, "-p"], capture_output=True, text=True,
                               check=True).stdout.splitlines()[1:]:
        name, arrow, path = line.strip().partition(" => ")
        if arrow:  # not the trailer
            listed.setdefault(name.split(" (")[0], []).append(path)
    assert elfdeps.read_ld_so_cache() == listed


def test_not_elf_and_static(tmp_path: Path) -> None:
    text = tmp_path / "script"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(elfdeps.ElfError, match="not an ELF file"):
        elfdeps.read(str(text))
    truncated = tmp_path / "truncated"
    truncated.write_bytes(Path("/bin/sh").resolve().read_bytes()[:100])
    with pytest.raises(elfdeps.ElfError):
        elfdeps.read(str(truncated))
    with pytest.raises(elfdeps.ElfError, match="No such file"):
        elfdeps.read(str(tmp_path / "nothing"))
    busybox = Path("/bin/busybox")
    if busybox.exists() and not elfdeps.read(str(busybox)).needed:  # busybox-static
        assert elfdeps.Resolver().loaded(str(busybox)) == ([str(busybox)], [])
    assert elfdeps.Resolver().loaded(str(text)) == ([], [])


def test_shared_objects_and_directories(tmp_path: Path) -> None:
    (tmp_path / "plugins/sub").mkdir(parents=True)
    for name in ("plugins/a.so", "plugins/sub/b.so", "plugins/readme.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "plugins/dir.so").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "real/lib.so.1").write_text("")
    (tmp_path / "plugins/link.so").symlink_to(tmp_path / "real/lib.so.1")
    found = elfdeps.shared_objects([str(tmp_path / "plugins")])
    assert found == [str(tmp_path / n) for n in ("plugins/a.so", "plugins/link.so",
                                                 "plugins/sub/b.so")]
    assert elfdeps.directories([str(tmp_path / "plugins/link.so")]) == [
        str(tmp_path / "plugins"), str(tmp_path / "real")]


def test_engine_installation_of_a_script(tmp_path: Path) -> None:
    """A CLI engine that is a wrapper script still has its directory in the view."""
    from runwasm.engines.wasmtime_cli import WasmtimeCli

    script = tmp_path / "bin" / "wasmtime"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(0o755)
    installation = WasmtimeCli().installation(str(script))
    assert installation.files == (str(script),)
    assert installation.host_paths == (str(script.parent),)
