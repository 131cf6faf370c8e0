"""runwasm.handler.rootfs: container paths resolved inside the rootfs, never out of it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fstree import link, put
from hypothesis import given, settings
from hypothesis import strategies as st

from runwasm.handler.rootfs import find_program, resolve


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """An empty image root filesystem."""
    root = tmp_path / "rootfs"
    root.mkdir()
    return root


def inside(root: Path, host: str) -> bool:
    return os.path.commonpath([str(root), host]) == str(root)


# ---------------------------------------------------------------------------------------
# resolve


@pytest.mark.parametrize(
    ("path", "cwd", "want"),
    [
        ("/", "/", ""),
        ("/a/b", "/", "a/b"),
        ("a/b", "/", "a/b"),
        ("b", "/srv", "srv/b"),
        ("b", "/srv/", "srv/b"),
        ("./b/./c", "/srv", "srv/b/c"),
        ("/a/../b", "/", "b"),
        ("/..", "/", ""),
        ("/../../../etc/passwd", "/", "etc/passwd"),
        ("../../../../etc/passwd", "/srv", "etc/passwd"),
        ("../x", "/srv/app", "srv/x"),
        ("//a///b//", "/", "a/b"),
    ],
)
def test_resolve_lexical(rootfs: Path, path: str, cwd: str, want: str) -> None:
    assert resolve(str(rootfs), path, cwd) == (str(rootfs / want) if want else str(rootfs))


def test_resolve_absolute_symlink_stays_inside(rootfs: Path) -> None:
    link(rootfs, "/app.wasm", "/etc/passwd")
    got = resolve(str(rootfs), "/app.wasm")
    assert got == str(rootfs / "etc" / "passwd")
    assert inside(rootfs, got)


def test_resolve_relative_symlink(rootfs: Path) -> None:
    put(rootfs, "/opt/real/mod.wasm")
    link(rootfs, "/usr/bin/mod", "../../opt/real/mod.wasm")
    assert resolve(str(rootfs), "/usr/bin/mod") == str(rootfs / "opt/real/mod.wasm")


def test_resolve_relative_symlink_clamped_at_root(rootfs: Path) -> None:
    link(rootfs, "/bin/app", "../../../../../../etc/shadow")
    assert resolve(str(rootfs), "/bin/app") == str(rootfs / "etc/shadow")


def test_resolve_symlinked_directory(rootfs: Path) -> None:
    put(rootfs, "/real/dir/f")
    link(rootfs, "/d", "/real/dir")
    assert resolve(str(rootfs), "/d/f") == str(rootfs / "real/dir/f")
    # `..` after a symlink applies to where the link led, as in the kernel
    assert resolve(str(rootfs), "/d/../x") == str(rootfs / "real/x")


def test_resolve_symlink_to_root_dotdot(rootfs: Path) -> None:
    link(rootfs, "/up", "..")
    link(rootfs, "/abs", "/")
    assert resolve(str(rootfs), "/up/up/up/etc") == str(rootfs / "etc")
    assert resolve(str(rootfs), "/abs/etc") == str(rootfs / "etc")


def test_resolve_chain_of_symlinks(rootfs: Path) -> None:
    put(rootfs, "/final")
    link(rootfs, "/l0", "/final")
    for i in range(1, 30):
        link(rootfs, f"/l{i}", f"l{i - 1}")
    assert resolve(str(rootfs), "/l29") == str(rootfs / "final")


def test_resolve_symlink_relative_to_cwd(rootfs: Path) -> None:
    put(rootfs, "/data/m.wasm")
    link(rootfs, "/work", "/data")
    assert resolve(str(rootfs), "m.wasm", "/work") == str(rootfs / "data/m.wasm")


def test_resolve_dangling_symlink_is_followed(rootfs: Path) -> None:
    link(rootfs, "/x", "/nowhere/y")
    assert resolve(str(rootfs), "/x") == str(rootfs / "nowhere/y")


@pytest.mark.parametrize(
    "links",
    [
        {"/a": "a"},
        {"/a": "/b", "/b": "/a"},
        {"/a": "b", "/b": "c", "/c": "a"},
        {"/d": "/d/x"},
    ],
)
def test_resolve_loop_raises(rootfs: Path, links: dict[str, str]) -> None:
    for where, to in links.items():
        link(rootfs, where, to)
    with pytest.raises(OSError) as info:
        resolve(str(rootfs), next(iter(links)) + "/file")
    assert info.value.errno == errno.ELOOP


def test_resolve_loop_in_the_middle_raises(rootfs: Path) -> None:
    link(rootfs, "/loop", "loop")
    with pytest.raises(OSError):
        resolve(str(rootfs), "/bin/../loop/x")


SEGMENTS = st.sampled_from(["..", ".", "a", "b", "l", "abs", "up", "etc", ""])


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(SEGMENTS, max_size=12), st.lists(SEGMENTS, max_size=4))
def test_resolve_never_escapes(tmp_path_factory: pytest.TempPathFactory, parts: list[str],
                               cwd_parts: list[str]) -> None:
    root = _escape_tree(tmp_path_factory)
    got = resolve(str(root), "/".join(parts), "/" + "/".join(cwd_parts))
    assert inside(root, got)
    assert ".." not in Path(got).relative_to(root).parts


_TREES: dict[int, Path] = {}


def _escape_tree(factory: pytest.TempPathFactory) -> Path:
    """One tree with links pointing outward, shared by all examples of the property."""
    key = id(factory)
    if key not in _TREES:
        root = factory.mktemp("escape") / "rootfs"
        (root / "a" / "b").mkdir(parents=True)
        link(root, "/l", "../../../../..")
        link(root, "/abs", "/")
        link(root, "/a/up", "../..")
        link(root, "/a/b/etc", "/../../etc")
        _TREES[key] = root
    return _TREES[key]


# ---------------------------------------------------------------------------------------
# find_program


def test_find_absolute(rootfs: Path) -> None:
    put(rootfs, "/app.wasm")
    assert find_program(str(rootfs), "/app.wasm", "/", []) == "/app.wasm"


def test_find_absolute_missing(rootfs: Path) -> None:
    assert find_program(str(rootfs), "/app.wasm", "/", []) is None


def test_find_absolute_directory_is_not_a_program(rootfs: Path) -> None:
    (rootfs / "app.wasm").mkdir()
    with pytest.raises(OSError, match="/app.wasm is a directory, not a regular file"):
        find_program(str(rootfs), "/app.wasm", "/", [])


def test_find_relative_to_cwd(rootfs: Path) -> None:
    put(rootfs, "/srv/app.wasm")
    assert find_program(str(rootfs), "./app.wasm", "/srv", []) == "/srv/app.wasm"
    assert find_program(str(rootfs), "../srv/app.wasm", "/srv", []) == "/srv/app.wasm"


def test_find_on_path(rootfs: Path) -> None:
    put(rootfs, "/opt/bin/tool")
    env = ["HOME=/", "PATH=/nope:/opt/bin:/usr/bin"]
    assert find_program(str(rootfs), "tool", "/", env) == "/opt/bin/tool"


def test_find_first_path_entry_wins(rootfs: Path) -> None:
    put(rootfs, "/a/tool")
    put(rootfs, "/b/tool")
    assert find_program(str(rootfs), "tool", "/", ["PATH=/b:/a"]) == "/b/tool"
    assert find_program(str(rootfs), "tool", "/", ["PATH=/a:/b"]) == "/a/tool"


def test_find_path_skips_directories(rootfs: Path) -> None:
    (rootfs / "a" / "tool").mkdir(parents=True)
    put(rootfs, "/b/tool")
    assert find_program(str(rootfs), "tool", "/", ["PATH=/a:/b"]) == "/b/tool"


def test_find_default_path(rootfs: Path) -> None:
    put(rootfs, "/usr/local/bin/tool")
    assert find_program(str(rootfs), "tool", "/", ["HOME=/root"]) == "/usr/local/bin/tool"


def test_find_last_path_variable_wins(rootfs: Path) -> None:
    put(rootfs, "/second/tool")
    env = ["PATH=/first", "PATH=/second"]
    assert find_program(str(rootfs), "tool", "/", env) == "/second/tool"


def test_find_empty_and_relative_path_entries_use_cwd(rootfs: Path) -> None:
    put(rootfs, "/w/tool")
    put(rootfs, "/w/sub/other")
    assert find_program(str(rootfs), "tool", "/w", ["PATH=/nope::/x"]) == "/w/tool"
    assert find_program(str(rootfs), "other", "/w", ["PATH=sub"]) == "/w/sub/other"


def test_find_bare_name_falls_back_to_cwd(rootfs: Path) -> None:
    put(rootfs, "/srv/app.wasm")
    assert find_program(str(rootfs), "app.wasm", "/srv", ["PATH=/bin"]) == "/srv/app.wasm"


def test_find_bare_name_missing(rootfs: Path) -> None:
    assert find_program(str(rootfs), "app.wasm", "/srv", ["PATH=/bin"]) is None


def test_find_through_symlink_keeps_container_path(rootfs: Path) -> None:
    put(rootfs, "/opt/app.wasm")
    link(rootfs, "/usr/bin/app", "/opt/app.wasm")
    assert find_program(str(rootfs), "app", "/", ["PATH=/usr/bin"]) == "/usr/bin/app"


def test_find_does_not_follow_symlink_to_host(rootfs: Path) -> None:
    # /etc/passwd exists on the host, not in this image: not found
    link(rootfs, "/bin/app", "/etc/passwd")
    assert os.path.isfile("/etc/passwd")
    assert find_program(str(rootfs), "/bin/app", "/", []) is None
    assert find_program(str(rootfs), "app", "/", ["PATH=/bin"]) is None


def test_find_symlink_loop_raises(rootfs: Path) -> None:
    link(rootfs, "/bin/app", "/bin/app")
    with pytest.raises(OSError):
        find_program(str(rootfs), "/bin/app", "/", [])
