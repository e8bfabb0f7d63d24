"""`relayrl plot RUN_DIR [--out FILE]`: a run's learning curve as a PNG.

Reads RUN_DIR/summary.json, whose "curve" holds one [seconds, env_steps, mean_return] row per progress
line (mean_return is the mean of the last 100 episodes, NaN until the first episode ends), and draws the
mean return against environment steps and against wall-clock seconds, side by side.

matplotlib is an optional extra (`pip install 'relayrl[plot]'`), imported only here and only when needed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

INSTALL_HINT = "relayrl plot needs matplotlib: pip install 'relayrl[plot]'"
SPARSE = 60  # curves with at most this many rows (a run of seconds) get a marker per row


class PlotError(Exception):
    """A run folder that cannot be plotted; the message says why."""


def load_summary(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlotError(f"{path} not found (is {run_dir} a run folder? `relayrl train` and `relayrl learner "
                        "--run-dir` write one)") from None
    except json.JSONDecodeError as exc:
        raise PlotError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("curve"), list):
        raise PlotError(f"{path} has no \"curve\" list")
    return summary


def curve_columns(curve: list) -> tuple[list[float], list[float], list[float]]:
    """Rows [seconds, env_steps, mean_return] -> three columns; a missing return (null) becomes NaN."""
    seconds, steps, returns = [], [], []
    for i, row in enumerate(curve):
        if not isinstance(row, list | tuple) or len(row) != 3:
            raise PlotError(f"curve row {i} is {row!r}, not [seconds, env_steps, mean_return]")
        seconds.append(float(row[0]))
        steps.append(float(row[1]))
        returns.append(math.nan if row[2] is None else float(row[2]))
    return seconds, steps, returns


def title(summary: dict) -> str:
    parts = [str(summary.get(key)) for key in ("env", "algo", "transport") if summary.get(key)]
    if summary.get("actors"):
        parts.append(f"{summary['actors']} actors")
    mean = summary.get("mean_return")
    if isinstance(mean, int | float) and not math.isnan(mean):
        parts.append(f"final mean return {mean:.1f}")
    if summary.get("stop_reason"):
        parts.append(f"stopped: {summary['stop_reason']}")
    return ", ".join(parts) or "RelayRL run"


def render(summary: dict, out: Path) -> None:
    """Draw the two panels and write the PNG with matplotlib's Agg canvas (no display, no global pyplot state)."""
    target = (summary.get("config") or {}).get("target_return")
    render_curves({"mean return, last 100 episodes": summary["curve"]}, out, title(summary), target)


COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def render_curves(curves: dict[str, list], out: Path, heading: str, target: float | None = None) -> None:
    """Several runs' curves (label -> rows [seconds, env_steps, mean_return]) in the two panels of one PNG:
    against environment steps, where runs at equal budgets compare, and against wall-clock seconds."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(INSTALL_HINT) from None

    fig = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    columns = {label: curve_columns(rows) for label, rows in curves.items()}
    for ax, x_label, which in ((axes[0], "environment steps", 1), (axes[1], "seconds", 0)):
        for (label, cols), colour in zip(columns.items(), COLOURS, strict=False):
            x, returns = cols[which], cols[2]
            ax.plot(x, returns, color=colour, linewidth=1.6, label=label,
                    marker="o" if len(x) <= SPARSE else None, markersize=3)
        if target is not None:
            ax.axhline(target, color="tab:green", linestyle="--", linewidth=1, label=f"target {target:g}")
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
    axes[0].set_ylabel("mean return (last 100 episodes)")
    axes[0].legend(loc="lower right")
    if all(math.isnan(r) for cols in columns.values() for r in cols[2]):
        for ax in axes:
            ax.text(0.5, 0.5, "no finished episode yet", transform=ax.transAxes, ha="center", color="grey")
    fig.suptitle(heading)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="relayrl plot",
        description="Plot a run's learning curve (mean return of the last 100 episodes against environment "
        "steps and against seconds) from RUN_DIR/summary.json to a PNG.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run folder holding summary.json")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: RUN_DIR/curve.png)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else args.run_dir / "curve.png"
    try:
        render(load_summary(args.run_dir), out)
    except PlotError as exc:
        print(f"relayrl plot: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
