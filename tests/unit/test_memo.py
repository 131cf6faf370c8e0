"""memo.py: one file per remembered thing, best effort, and a bounded directory."""

from __future__ import annotations

import os
from pathlib import Path

from runwasm import memo


def test_write_then_read(tmp_path: Path) -> None:
    path = memo.path_for(str(tmp_path / "memos"), "/etc/runwasm/config.toml")
    assert memo.read(path) is None
    memo.write(path, {"a": [1, "b"]})
    assert memo.read(path) == {"a": [1, "b"]}
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.path.basename(path) == "%2Fetc%2Frunwasm%2Fconfig.toml.json"


def test_a_value_json_cannot_hold_is_not_written(tmp_path: Path) -> None:
    path = memo.path_for(str(tmp_path), "x")
    memo.write(path, {"a": object()})
    assert not os.path.exists(path)


def test_a_directory_keeps_the_newest_entries(tmp_path: Path) -> None:
    directory = str(tmp_path / "memos")
    paths = [memo.path_for(directory, f"/tmp/t{i}/config.toml") for i in range(12)]
    for i, path in enumerate(paths):
        memo.write(path, i)
        os.utime(path, ns=(i * 10**9, i * 10**9))  # written in this order
    memo.prune(directory, 5)
    assert sorted(os.listdir(directory)) == sorted(os.path.basename(p) for p in paths[-5:])
    assert memo.read(paths[-1]) == 11


def test_a_new_memo_prunes_beyond_the_bound(tmp_path: Path) -> None:
    directory = tmp_path / "memos"
    directory.mkdir()
    for i in range(memo.MAX_ENTRIES + 20):
        old = directory / f"old{i}.json"
        old.write_text("0")
        os.utime(old, ns=(i, i))
    (directory / "not-a-memo").write_text("kept")
    newest = memo.path_for(str(directory), "/new")
    memo.write(newest, 1)
    names = set(os.listdir(directory))
    assert len([n for n in names if n.endswith(".json")]) == memo.MAX_ENTRIES
    assert os.path.basename(newest) in names and "not-a-memo" in names
    assert "old0.json" not in names and f"old{memo.MAX_ENTRIES + 19}.json" in names
    # Rewriting an existing memo (the common case: the same config again) prunes nothing.
    (directory / "extra.json").write_text("0")
    memo.write(newest, 2)
    assert "extra.json" in os.listdir(directory)
