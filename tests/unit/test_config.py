"""runwasm.config: the node config file, validated with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from runwasm import config
from runwasm.config import NodeConfig, from_mapping, load
from runwasm.errors import RunwasmError


def write(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "config.toml"
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return str(path)


def assert_defaults(cfg: NodeConfig) -> None:
    assert cfg.delegate == ""
    assert cfg.search == ("runc", "crun")
    assert cfg.default_engine == "wasmtime"
    assert cfg.detection == "annotations"
    assert cfg.log_file == ""
    assert cfg.log_level == "info"
    assert cfg.log_target == "auto"
    assert cfg.journal_socket == "/run/systemd/journal/socket"
    assert cfg.syslog_socket == "/dev/log"


def test_defaults() -> None:
    cfg = NodeConfig()
    assert cfg.path == "/etc/runwasm/config.toml"
    assert_defaults(cfg)


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    path = str(tmp_path / "nope" / "config.toml")
    cfg = load(path)
    assert cfg.path == path
    assert_defaults(cfg)


def test_config_path_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNWASM_CONFIG", raising=False)
    assert config.config_path() == "/etc/runwasm/config.toml"
    monkeypatch.setenv("RUNWASM_CONFIG", "")
    assert config.config_path() == "/etc/runwasm/config.toml"


def test_env_override_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "absent.toml")
    monkeypatch.setenv("RUNWASM_CONFIG", path)
    assert config.config_path() == path
    cfg = load()
    assert cfg.path == path
    assert_defaults(cfg)


def test_env_override_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[wasm]\ndetection = "smart"\n')
    monkeypatch.setenv("RUNWASM_CONFIG", path)
    cfg = load()
    assert cfg.path == path
    assert cfg.detection == "smart"


def test_explicit_path_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWASM_CONFIG", write(tmp_path, '[wasm]\ndetection = "smart"\n'))
    other = tmp_path / "other.toml"
    other.write_text('[wasm]\ndefault_engine = "wasmer"\n')
    cfg = load(str(other))
    assert cfg.default_engine == "wasmer"
    assert cfg.detection == "annotations"


FULL = """\
# runwasm node configuration
[runtime]
delegate = "/usr/local/sbin/runc"  # explicit delegate
search = ["crun", "runc"]

[wasm]
default_engine = "wasmedge"
detection = "smart"

[log]
file = "/var/log/runwasm.log"
level = "debug"
"""


def test_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    cfg = load(path)
    assert cfg.path == path
    assert cfg.delegate == "/usr/local/sbin/runc"
    assert cfg.search == ("crun", "runc")
    assert isinstance(cfg.search, tuple)
    assert cfg.default_engine == "wasmedge"
    assert cfg.detection == "smart"
    assert cfg.log_file == "/var/log/runwasm.log"
    assert cfg.log_level == "debug"


def test_empty_file_and_empty_sections(tmp_path: Path) -> None:
    assert_defaults(load(write(tmp_path, "")))
    assert_defaults(load(write(tmp_path, "# only a comment\n[runtime]\n[wasm]\n[log]\n")))


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[log]\nlevel = "warn"\n'))
    assert cfg.log_level == "warn"
    assert cfg.detection == "annotations"
    assert cfg.search == ("runc", "crun")


def test_shipped_default_config_is_valid() -> None:
    shipped = Path(__file__).resolve().parents[2] / "configs" / "config.toml"
    if not shipped.exists():
        pytest.skip("no configs/config.toml in this checkout")
    load(str(shipped))


@pytest.mark.parametrize(
    "text",
    [
        "[wasm",
        "[wasm]\ndetection = \n",
        "[wasm]\ndetection = smart\n",
        "[wasm]\ndetection = \"smart\"\ndetection = \"smart\"\n",
        "[wasm]\n[wasm]\n",
        "[wasm]\ndetection = \"smart\" junk\n",
    ],
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RunwasmError) as info:
        load(path)
    assert "invalid TOML" in str(info.value)
    assert path in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b'[log]\nfile = "\xff"\n')
    with pytest.raises(RunwasmError, match="not UTF-8"):
        load(path)


def test_unreadable_path_is_error(tmp_path: Path) -> None:
    # A directory where the file should be: an OSError other than "not found".
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(RunwasmError) as info:
        load(str(tmp_path / "config.toml"))
    assert str(tmp_path / "config.toml") in str(info.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[engine]\nx = 1\n", "[engine]"),
        ('detection = "smart"\n', "[detection]"),
        ('wasm = "wasmtime"\n', "[wasm]"),
    ],
)
def test_unknown_section(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(RunwasmError) as info:
        load(write(tmp_path, text))
    assert "unknown section" in str(info.value)
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[wasm]\ndetecton = "smart"\n', "wasm.detecton"),
        ('[runtime]\nengine = "wasmtime"\n', "runtime.engine"),
        ('[log]\npath = "/x"\n', "log.path"),
        ("[wasm.extra]\nx = 1\n", "wasm.extra"),
    ],
)
def test_unknown_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(RunwasmError) as info:
        load(write(tmp_path, text))
    assert "unknown key" in str(info.value)
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("text", "key", "kind"),
    [
        ("[wasm]\ndetection = 1\n", "wasm.detection", "string"),
        ("[wasm]\ndefault_engine = [\"wasmtime\"]\n", "wasm.default_engine", "string"),
        ("[runtime]\ndelegate = true\n", "runtime.delegate", "string"),
        ('[runtime]\nsearch = "runc"\n', "runtime.search", "list"),
        ("[log]\nfile = 3.5\n", "log.file", "string"),
        ("[log]\nlevel = {a = 1}\n", "log.level", "string"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, key: str, kind: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RunwasmError) as info:
        load(path)
    message = str(info.value)
    assert key in message
    assert kind in message
    assert path in message


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('[wasm]\ndetection = "clever"\n', "wasm.detection", "clever"),
        ('[wasm]\ndetection = "Smart"\n', "wasm.detection", "Smart"),
        ('[wasm]\ndefault_engine = "wasm"\n', "wasm.default_engine", "wasm"),
        ('[wasm]\ndefault_engine = "v8"\n', "wasm.default_engine", "v8"),
        ('[log]\nlevel = "verbose"\n', "log.level", "verbose"),
        ('[log]\ntarget = "stderr"\n', "log.target", "stderr"),
    ],
)
def test_bad_choice(tmp_path: Path, text: str, key: str, value: str) -> None:
    with pytest.raises(RunwasmError) as info:
        load(write(tmp_path, text))
    message = str(info.value)
    assert key in message
    assert repr(value) in message


def test_log_table(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[log]\ntarget = "journal"\njournal_socket = "/tmp/j.sock"\n'
                               'syslog_socket = "/tmp/s.sock"\n'))
    assert (cfg.log_target, cfg.journal_socket, cfg.syslog_socket) == (
        "journal", "/tmp/j.sock", "/tmp/s.sock")


def test_file_target_needs_a_file(tmp_path: Path) -> None:
    with pytest.raises(RunwasmError, match="log.target = \"file\" needs log.file"):
        load(write(tmp_path, '[log]\ntarget = "file"\n'))
    assert load(write(tmp_path, '[log]\ntarget = "file"\nfile = "/x.log"\n')).log_file == "/x.log"


@pytest.mark.parametrize("search", ["[]", '["runc", 1]', '["runc", ""]', "[[\"runc\"]]"])
def test_bad_search_list(tmp_path: Path, search: str) -> None:
    with pytest.raises(RunwasmError, match="runtime.search"):
        load(write(tmp_path, f"[runtime]\nsearch = {search}\n"))


def test_from_mapping_direct() -> None:
    cfg = from_mapping({"wasm": {"detection": "smart"}}, "/x.toml")
    assert cfg.path == "/x.toml"
    assert cfg.detection == "smart"
    with pytest.raises(RunwasmError, match="wasm.detection"):
        from_mapping({"wasm": {"detection": None}})


def test_engine_tables(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[wasm]\ndefault_engine = "wasmtime-cli"\n'
                               '[engines.wasmtime-cli]\npath = "/opt/wasmtime"\n'
                               'options = ["-O", "opt-level=2"]\n'
                               '[engines.wasmer]\npython = "/opt/py310/bin/python"\n'))
    assert cfg.default_engine == "wasmtime-cli"
    assert cfg.engines == {"wasmtime-cli": {"path": "/opt/wasmtime",
                                            "options": ["-O", "opt-level=2"]},
                           "wasmer": {"python": "/opt/py310/bin/python"}}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[engines]\nx = 1\n", "engines.x must be a table"),
        ("[engines.wasmer]\nbinary = 1\n", "unknown key engines.wasmer.binary"),
        ("[engines.wasmer]\npath = 1\n", "engines.wasmer.path must be a string"),
        ('[engines.wasmer]\noptions = ["a", 1]\n', "engines.wasmer.options must be a list"),
    ],
)
def test_engine_table_errors(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(RunwasmError) as info:
        load(write(tmp_path, text))
    assert named in str(info.value)


def test_parsed_config_is_remembered_for_the_same_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "MEMO_DIR", str(tmp_path / "memo"))
    path = write(tmp_path, '[wasm]\ndetection = "smart"\n')
    assert load(path).detection == "smart"
    memos = list((tmp_path / "memo").iterdir())
    assert len(memos) == 1 and oct(memos[0].stat().st_mode & 0o777) == "0o600"

    def no_parse(raw: bytes, where: str) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(config, "_parse_toml", no_parse)
    assert load(path).detection == "smart"  # from the memo
    Path(path).write_text('[wasm]\ndetection = "annotations"\n')
    with pytest.raises(AssertionError, match="parsed again"):
        load(path)  # new text: the memo is not used
