"""`relayrl bench --suite learners --quick`: 2 learner ranks against 1 on the same actors, each run through
`relayrl train`, and the all-reduce timed between 2 gloo ranks; written with provenance. Never asserts a speed."""

import json
import subprocess
import sys


def test_quick_learners_suite_runs_both_shapes_and_times_the_allreduce(tmp_path):
    result = subprocess.run([sys.executable, "-m", "relayrl_cli", "bench", "--suite", "learners", "--quick", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    r = json.loads((tmp_path / "learners-quick.json").read_text())
    assert len(r["provenance"]["commit"]) == 40
    (runs,) = r["runs"].values()
    assert set(runs) == {"1 rank x 2 actors", "2 ranks x 1 actor"}
    one, two = runs["1 rank x 2 actors"][0], runs["2 ranks x 1 actor"][0]
    assert one["learners"] is None and two["learners"]["ranks"] == 2  # the shapes are what they say
    assert two["learners"]["weights_checks"] >= 0 and one["env_steps"] >= 6_000 <= two["env_steps"]
    for shape in (one, two):
        assert shape["run"]["started_at"] < shape["run"]["finished_at"]
    sizes = {name: a["parameters"] for name, a in r["allreduce"].items() if name != "run"}
    assert sizes["atari_nature_cnn"] > 100 * sizes["cartpole_mlp"] > 0
    assert all(a["ms"]["median"] > 0 for name, a in r["allreduce"].items() if name != "run")
    assert "2 ranks x 1 actor" in (tmp_path / "learners-quick.md").read_text()
