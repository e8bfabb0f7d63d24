"""`relayrl plot`: a run folder's summary.json -> a PNG learning curve."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from relayrl_cli import plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_summary(run_dir, curve, **extra) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {"env": "CartPole-v1", "algo": "a2c", "transport": "trajectories", "actors": 2,
               "mean_return": 480.5, "stop_reason": "solved", "config": {"target_return": 475.0},
               "curve": curve, **extra}
    # json.dumps writes NaN as the learner does (Python's json reads it back)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def synthetic_curve(rows: int = 60) -> list[list[float]]:
    """A NaN start (no episode finished yet), then a rising mean return, as the learner records it."""
    curve = [[0.5, 0, math.nan], [1.5, 700, math.nan]]
    for i in range(2, rows):
        curve.append([0.5 + i, 700 * i, 20 + 460 * (1 - math.exp(-i / 15))])
    return curve


def test_writes_a_png_learning_curve(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra: pip install 'relayrl[plot]'")
    run_dir = tmp_path / "run"
    write_summary(run_dir, synthetic_curve())
    assert plot.main([str(run_dir)]) == 0
    out = run_dir / "curve.png"
    assert capsys.readouterr().out.strip() == str(out)
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 20_000, "two panels with axes, labels and a curve are well over 20 kB"


def test_out_option_and_a_run_with_no_finished_episode(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra: pip install 'relayrl[plot]'")
    run_dir = tmp_path / "run"
    write_summary(run_dir, [[0.5, 0, math.nan], [1.5, 64, None]], mean_return=None)
    out = tmp_path / "elsewhere" / "early.png"
    assert plot.main([str(run_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "summary.json not found"),
        ("{not json", "not valid JSON"),
        ('{"env": "CartPole-v1"}', 'no "curve"'),
        ('{"curve": [[1, 2]]}', "curve row 0"),
    ],
)
def test_bad_run_folders_fail_with_a_message(tmp_path, capsys, content, fragment):
    pytest.importorskip("matplotlib", reason="the plot extra: pip install 'relayrl[plot]'")
    if content is not None:
        (tmp_path / "summary.json").write_text(content)
    assert plot.main([str(tmp_path)]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "curve.png").exists()


def test_without_matplotlib_names_the_extra(tmp_path, monkeypatch, capsys):
    # None in sys.modules makes `import matplotlib...` raise ImportError, as on an install without the extra
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    write_summary(tmp_path, synthetic_curve(5))
    assert plot.main([str(tmp_path)]) == 2
    assert "pip install 'relayrl[plot]'" in capsys.readouterr().err


def test_cli_dispatches_plot(tmp_path):
    """`relayrl plot` reaches relayrl_cli.plot (a missing folder is enough to tell)."""
    result = subprocess.run([sys.executable, "-m", "relayrl_cli", "plot", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "summary.json not found" in result.stderr, result.stderr
