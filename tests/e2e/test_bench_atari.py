"""`relayrl bench --suite atari --quick --parts learning`: RelayRL and SB3 A2C learn the same id for the same env
steps, each with a curve of true game scores against env steps, both drawn in one PNG; results written with their
provenance to the game's own file. Never asserts a speed or a score."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("ale_py")
pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")

BUDGET = 2_000  # the quick plan's env steps a side


def bench(out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relayrl_cli", "bench", "--suite", "atari", "--quick", "--parts",
                           "learning", "--out", str(out), *extra], capture_output=True, text=True, timeout=600)


def test_both_sides_learn_the_same_id_for_the_same_env_steps_and_share_one_plot(tmp_path):
    result = bench(tmp_path, "--game", "ALE/Pong-v5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "atari-quick.json").exists()  # another game than Breakout: a file of its own
    r = json.loads((tmp_path / "atari-pong-quick.json").read_text())
    assert r["game"] == "ALE/Pong-v5" and set(r) >= {"learning", "provenance"}
    learn = r["learning"]
    assert learn["env_steps"] == BUDGET
    # the most a side can overshoot: SB3 one update's transitions; RelayRL also counts the round its actors were
    # delivering when the learner stopped
    rounds = {"relayrl": 2 * (2 * 8 * 5), "sb3": 16 * 5}
    for side, step in rounds.items():
        s = learn[side]
        assert BUDGET <= s["env_steps"] <= BUDGET + step, side
        steps = [row[1] for row in s["curve"]]
        # the curve reaches the budget (RelayRL's summary also counts steps that arrive while it stops)
        assert steps == sorted(steps) and BUDGET <= steps[-1] <= s["env_steps"], side
        assert len(s["run"]["commit"]) == 40 and s["run"]["started_at"] < s["run"]["finished_at"]
    assert learn["relayrl"]["run"]["finished_at"] <= learn["sb3"]["run"]["started_at"]  # one after the other
    png = tmp_path / learn["curve_png"]
    assert png.name == "atari-pong-quick.png" and png.read_bytes().startswith(b"\x89PNG")
    md = (tmp_path / "atari-pong-quick.md").read_text()
    assert "RelayRL A2C, preset" in md and "SB3 A2C, zoo Atari settings" in md and f"{BUDGET:,} a side" in md
