"""config.json read back by `relayrl train --config`, and run.json: what a run folder says about its run."""

from __future__ import annotations

import json

import pytest

from relayrl.config import ConfigError, load
from relayrl_cli.run_folder import as_environ, read_config, write_config, write_run_info
from relayrl_cli.train import TrainConfig


def test_a_written_config_loads_back_to_the_same_options(tmp_path):
    original = load(TrainConfig, ["--env", "Pendulum-v1", "--hidden-sizes", "32,16", "--eval-every", "5000",
                                  "--target-return", "-200", "--run-dir", str(tmp_path / "a"), "--resume"],
                    environ={"RELAYRL_AUTH_TOKEN": "a-secret-token-of-16+"})
    path = write_config(tmp_path, original)
    assert "a-secret-token" not in path.read_text()
    values = read_config(path)
    # where the run lived, how it was started and secrets are not repeated
    assert not {"run_dir", "checkpoint_dir", "resume", "auth_token", "port", "metrics_port"} & set(values)
    again = load(TrainConfig, ["--lr", "0.001"], environ=as_environ(values))  # a flag overrides the file
    for name, value in json.loads(path.read_text()).items():
        if name not in ("run_dir", "checkpoint_dir", "resume", "auth_token", "lr"):
            assert getattr(again, name) == (tuple(value) if isinstance(value, list) else value), name
    assert again.lr == 0.001 and again.run_dir is None and not again.resume and again.auth_token is None


def test_yaml_and_broken_files(tmp_path):
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("env: Acrobot-v1\nhidden_sizes: [8, 8]\nnormalize_observations: true\n")
    config = load(TrainConfig, [], environ=as_environ(read_config(yaml_file)))
    assert (config.env, config.hidden_sizes, config.normalize_observations) == ("Acrobot-v1", (8, 8), True)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="--config"):
        read_config(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="--config"):
        read_config(tmp_path / "missing.json")


def test_run_info_names_the_command_versions_and_seed(tmp_path):
    path = write_run_info(tmp_path, ["--env", "CartPole-v1"], 7, {"RELAYRL_AUTH_TOKEN": "x" * 20, "HOME": "/root"})
    info = json.loads(path.read_text())
    assert info["command"] == "relayrl train --env CartPole-v1" and info["seed"] == 7
    assert info["environment"] == {"RELAYRL_AUTH_TOKEN": "<redacted>"}
    assert info["versions"]["torch"] and info["versions"]["gymnasium"] and info["versions"]["relayrl"]
    assert info["git_commit"] is None or len(info["git_commit"].split("-")[0]) == 40
