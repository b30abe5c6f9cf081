"""Settings read from JSON are parsed strictly (issue 12, item 7).

``bool("false")`` is True: a ``"trust_remote_code": "false"`` in a --config file used to turn
remote code ON. Every dataclass config loaded from JSON (training settings, run_config.json,
scan settings) goes through ftcurate.core.config: booleans are true/false or 1/0, numbers are
typed, ``method`` is one of its choices, an unknown key is an error naming the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import pytest

from ftcurate.cli import main
from ftcurate.core.config import ConfigError, from_dict, parse_bool
from ftcurate.core.quality.scan import ScanSettings
from ftcurate.train import TrainConfig


def _write(tmp_path, obj, name="cfg.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return str(path)


@pytest.mark.parametrize("key", ["trust_remote_code", "allow_leakage", "packing"])
def test_train_config_string_false_is_false(tmp_path, key):
    path = _write(tmp_path, {"model_dir": "m", "output_dir": "o", key: "false"})
    assert getattr(TrainConfig.from_json(path), key) is False
    path = _write(tmp_path, {"model_dir": "m", "output_dir": "o", key: "TRUE"})
    assert getattr(TrainConfig.from_json(path), key) is True
    path = _write(tmp_path, {"model_dir": "m", "output_dir": "o", key: 0})
    assert getattr(TrainConfig.from_json(path), key) is False


@pytest.mark.parametrize("value", ["no", "yes", "off", "", 2, 0.5, [], {}, None])
def test_train_config_unclear_boolean_is_an_error_naming_the_key_and_file(tmp_path, value):
    path = _write(tmp_path, {"model_dir": "m", "trust_remote_code": value})
    with pytest.raises(ValueError) as err:
        TrainConfig.from_json(path)
    assert "'trust_remote_code'" in str(err.value) and str(path) in str(err.value)
    assert isinstance(err.value, ConfigError) and err.value.key == "trust_remote_code"


@pytest.mark.parametrize("change, words", [
    ({"lora_r": "16"}, "'lora_r' must be a whole number"),
    ({"lora_r": 16.5}, "'lora_r' must be a whole number"),
    ({"lora_r": True}, "'lora_r' must be a whole number"),
    ({"learning_rate": "2e-4"}, "'learning_rate' must be a number"),
    ({"learning_rate": float("nan")}, "'learning_rate' must be a number"),
    ({"method": "full"}, "'method' must be one of lora, qlora, dora"),
    ({"target_modules": 3}, "'target_modules' must be a string"),
    ({"lora_rr": 8}, "unknown setting 'lora_rr' (did you mean 'lora_r'?)"),
])
def test_train_config_typed_values_and_unknown_keys(tmp_path, change, words):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_json(_write(tmp_path, {"model_dir": "m", **change}))
    assert words in str(err.value)


def test_train_config_whole_floats_and_ints_are_fine():
    config = TrainConfig.from_dict({"lora_r": 8.0, "epochs": 2, "learning_rate": 1})
    assert config.lora_r == 8 and isinstance(config.lora_r, int)
    assert config.epochs == 2.0 and isinstance(config.epochs, float) and config.learning_rate == 1.0
    assert config.model_dir == ""  # missing keys keep their defaults
    with pytest.raises(ConfigError, match="must be a JSON object"):
        TrainConfig.from_dict(["model_dir"])


def test_scan_settings_json_is_strict():
    assert ScanSettings.from_json('{"leakage": "false"}').leakage is False
    assert ScanSettings.from_json('{"heuristics": {"language": "false"}}').heuristics.language is False
    assert ScanSettings.from_json('{"near_duplicates": 0}').near_duplicates is False
    with pytest.raises(ValueError, match="'semantic_leakage' must be true or false"):
        ScanSettings.from_json('{"semantic_leakage": "nope"}')
    with pytest.raises(ValueError, match="'heuristics.pii' must be true or false"):
        ScanSettings.from_json('{"heuristics": {"pii": "off"}}')
    with pytest.raises(ValueError, match="unknown setting 'heuristics.langauge'"):
        ScanSettings.from_json('{"heuristics": {"langauge": true}}')
    with pytest.raises(ValueError, match="'num_perm' must be a whole number"):
        ScanSettings.from_json('{"num_perm": "128"}')
    settings = ScanSettings(minhash_threshold=0.9, lsh_storage={"type": "dict"})
    assert ScanSettings.from_json(settings.to_json()) == settings


@dataclass
class Inner:
    on: bool = False


@dataclass
class Outer:
    name: str = field(default="a", metadata={"choices": ("a", "b")})
    limit: Optional[int] = None
    inner: Inner = field(default_factory=Inner)


def test_loader_handles_optional_nested_and_choices():
    assert from_dict(Outer, {"limit": None, "inner": {"on": "1"}}) == Outer(limit=None, inner=Inner(True))
    with pytest.raises(ConfigError, match="'name' must be one of a, b"):
        from_dict(Outer, {"name": "c"})
    with pytest.raises(ConfigError, match="'inner' must be a JSON object"):
        from_dict(Outer, {"inner": True})
    assert parse_bool(" False ") is False and parse_bool(1) is True


def test_cli_train_config_with_bad_boolean_is_one_clear_line(tmp_path, capsys):
    path = _write(tmp_path, {"model_dir": str(tmp_path / "model"), "trust_remote_code": "yes"})
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    code = main(["train", "--config", path, "--data", str(data), "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "'trust_remote_code' must be true or false" in err and "Traceback" not in err


def test_cli_config_file_cannot_turn_remote_code_on_by_itself(tmp_path, capsys):
    from ftcurate.cli import _train_config, build_parser

    path = _write(tmp_path, {"model_dir": "m", "output_dir": "o", "trust_remote_code": True})
    config = _train_config(build_parser().parse_args(["train", "--config", path, "--data", "d"]))
    assert config.trust_remote_code is False
    assert "left off" in capsys.readouterr().err
    config = _train_config(build_parser().parse_args(["train", "--config", path, "--data", "d",
                                                      "--trust-remote-code"]))
    assert config.trust_remote_code is True


def test_cli_scan_settings_file_with_bad_boolean(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    settings = _write(tmp_path, {"leakage": "maybe"}, "s.json")
    assert main(["scan", str(data), "--settings", settings]) == 2
    err = capsys.readouterr().err
    assert "'leakage' must be true or false" in err and "Traceback" not in err
