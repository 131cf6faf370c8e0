"""How create rewrites a Wasm container's bundle: the caller's config.json is kept by a
second name (never copied, never freed), the same bundle created again writes nothing,
and every way back puts the caller's own file back in place."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hostile_support import CONFIG, SMART, runc_spec, wasm, write_bundle

from runwasm.config import NodeConfig
from runwasm.handler import create
from runwasm.handler.log import Log


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "b", runc_spec(), wasm())


def _prepare(bundle: Path, config: NodeConfig = CONFIG) -> bool:
    return create.prepare(str(bundle), config, Log()).wasm


def _inode(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _original(bundle: Path) -> Path:
    return bundle / create.STATE_DIR / create.ORIGINAL


def _is_view(path: Path) -> bool:
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec["root"]["path"] == str(path.parent / create.STATE_DIR / create.SKELETON)


def test_the_caller_s_file_is_kept_not_copied(bundle: Path) -> None:
    caller = _inode(bundle / "config.json")
    raw = (bundle / "config.json").read_bytes()
    assert _prepare(bundle)
    assert _is_view(bundle / "config.json")
    assert _inode(_original(bundle)) == caller  # the same file: nothing written, nothing freed
    assert _original(bundle).read_bytes() == raw


def test_creating_the_same_bundle_again_writes_nothing(bundle: Path) -> None:
    assert _prepare(bundle)
    view = bundle / "config.json"
    before = (_inode(view), os.stat(view).st_mtime_ns, view.read_bytes())
    original = _inode(_original(bundle))
    assert _prepare(bundle)
    assert (_inode(view), os.stat(view).st_mtime_ns, view.read_bytes()) == before
    assert _inode(_original(bundle)) == original


def test_a_changed_view_is_written(bundle: Path) -> None:
    assert _prepare(bundle)
    view = bundle / "config.json"
    first = view.read_bytes()
    other = NodeConfig(path=CONFIG.path, cache_dir="",
                       engines={"wasmtime": {"options": ["--no-such-option"]}})
    assert _prepare(bundle, other)
    assert view.read_bytes() != first and _is_view(view)
    assert "--no-such-option" in view.read_text()


def test_restore_puts_the_caller_s_own_file_back(bundle: Path) -> None:
    caller = _inode(bundle / "config.json")
    raw = (bundle / "config.json").read_bytes()
    assert _prepare(bundle)
    create.restore(str(bundle))
    assert _inode(bundle / "config.json") == caller
    assert (bundle / "config.json").read_bytes() == raw
    assert not (bundle / create.STATE_DIR).exists()
    create.restore(str(bundle))  # nothing left to restore: nothing happens
    assert (bundle / "config.json").read_bytes() == raw


def test_a_bundle_now_linux_gets_the_caller_s_file_back(tmp_path: Path) -> None:
    spec = runc_spec()
    del spec["annotations"]  # Wasm only when the node sniffs entrypoints
    bundle = write_bundle(tmp_path / "b", spec, wasm())
    caller = _inode(bundle / "config.json")
    assert _prepare(bundle, SMART)
    assert not _prepare(bundle, CONFIG)
    assert _inode(bundle / "config.json") == caller
    assert not (bundle / create.STATE_DIR).exists()


def test_an_original_the_caller_replaced_is_replaced(bundle: Path) -> None:
    assert _prepare(bundle)
    # The caller writes a new config.json into the bundle (podman does on a new create).
    spec = runc_spec()
    spec["process"]["args"] = ["/app.wasm", "8"]
    (bundle / "config.json").unlink()
    write_bundle(bundle, spec)
    caller = _inode(bundle / "config.json")
    assert _prepare(bundle)
    assert _inode(_original(bundle)) == caller
    assert json.loads(_original(bundle).read_text())["process"]["args"][-1] == "8"


def test_without_hard_links_the_original_is_copied(bundle: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    raw = (bundle / "config.json").read_bytes()
    caller = _inode(bundle / "config.json")
    monkeypatch.setattr(create.os, "link", refuse)
    assert _prepare(bundle)
    assert _original(bundle).read_bytes() == raw
    assert _inode(_original(bundle)) != caller
    create.restore(str(bundle))
    assert (bundle / "config.json").read_bytes() == raw
