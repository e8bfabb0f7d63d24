"""`python -m relayrl_cli.bench.docs [--check]`: the benchmark figures in README.md and docs/ written from the
committed results files (benchmarks/results/*.json), between markers, so the text cannot drift from them.

A generated block sits between two HTML comments, invisible once rendered:

    <!-- generated:NAME (python -m relayrl_cli.bench.docs; edit the renderer, not this) -->
    ...
    <!-- /generated:NAME -->

NAME is one of SECTIONS: a results file and a function that renders it. Each block ends with the file it
comes from, and, for a file measured before results carried their provenance, says so and why
(benchmarks/results/legacy.toml). With --check nothing is written and the exit status is 1 when a document
differs from what the results give (tests/unit/test_docs_generated.py runs the same check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from relayrl_cli.bench import atari, domains, learners, learning
from relayrl_cli.bench.stats import paired_ratio

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
DOCS = [REPO / "README.md", REPO / "docs" / "DEPLOY.md"]
BLOCK = re.compile(r"(<!-- generated:(?P<name>[\w-]+) [^\n]*-->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)
HEADER = "<!-- generated:{name} (python -m relayrl_cli.bench.docs; edit the renderer, not this) -->"


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def legacy() -> dict:
    return tomllib.loads((RESULTS / "legacy.toml").read_text())


def source(name: str, link: str) -> str:
    """The line that closes a block: where its figures come from, and whether that file can be traced."""
    text = f"<sub>From [{name}]({link}{name})"
    entry = legacy().get(name)
    if entry is not None:
        text += f", listed in [legacy.toml]({link}legacy.toml): {' '.join(entry['reason'].split())}"
    return text + ".</sub>"


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _range(values: list[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}"


# --- the renderers: results -> markdown ---------------------------------------------------------------------
def performance(b: dict, link: str) -> str:
    """README "Performance": the CartPole headline table."""
    best, default = b["vs_sb3"]["steps_per_second_pipeline"], "a2c/trajectories/2"
    sb3_speed = b["sb3"]["steps_per_second"]
    default_ratio = paired_ratio(b["pipeline"][default]["steady_steps_per_second"]["runs"], sb3_speed["runs"])
    ours, theirs, fast = b["solve"], b["sb3"]["solve"], b.get("solve_fast")  # results before issue 24 lack it
    actors, envs = best.split("/")[2].split(" (")[0], b["pipeline"][best]["num_envs_per_actor"]
    cnn = b["transport"]["broadcast_atari_cnn"]["milliseconds"]["median"]
    fastest = _n(b["pipeline"][best]["steady_steps_per_second"]["median"])
    reach = [p["vs_ceiling"] for p in b["pipeline"].values()]
    return "\n".join([
        "| CartPole-v1 | RelayRL | SB3 A2C, same run | ratio |",
        "|---|---|---|---|",
        f"| env steps/s through the whole pipeline (A2C, {actors} actors x {envs} envs; a held solve in "
        f"{b['solve_wide']['wall_seconds']['median']:.1f} s) | {fastest} | {_n(sb3_speed['median'])} | "
        f"{b['vs_sb3']['steps_per_second_ratio']:.1f}x |",
        f"| env steps/s, default configuration (A2C, 2 actors x {b['pipeline'][default]['num_envs_per_actor']} envs) | "
        f"{_n(b['pipeline'][default]['steady_steps_per_second']['median'])} | {_n(sb3_speed['median'])} | "
        f"{default_ratio['median']:.1f}x |",
        *_held_solve_rows("default `relayrl train`", ours, theirs, b["vs_sb3"]["solve_time_ratio"]),
        *([] if fast is None else _held_solve_rows(
            f"fastest configuration: `relayrl train {' '.join(fast['extra_args'])}`", fast, theirs,
            b["vs_sb3"]["fast_solve_time_ratio"])),
        f"| weight broadcast, learner update to actor applying it (CartPole MLP / Atari Nature CNN) | "
        f"{b['transport']['broadcast_cartpole']['milliseconds']['median']:.2f} ms / {cnn:.0f} ms | | |",
        "",
        f"The pipeline rows reach {min(reach):.0%}–{max(reach):.0%} of one core's env + batched-inference ceiling "
        "at the same envs per actor (the target was 50%).",
    ])


def _held_solve_rows(label: str, ours: dict, theirs: dict, ratio: float) -> list[str]:
    """The seconds from command start to a held solve and the env steps to it: a solve section of ours (``label``
    names its configuration) against SB3's."""
    return [f"| seconds from command start to a held mean return of {ours['target']:g} ({label}) | "
            f"{ours['wall_seconds']['median']:.1f} | {theirs['wall_seconds']['median']:.1f} | {ratio:.2f} |",
            f"| env steps to that held solve | {_n(ours['env_steps']['median'])} | "
            f"{_n(theirs['env_steps']['median'])} | |"]


def _runs(h: dict) -> list[tuple[str, dict]]:
    return [(shape, r) for shape, entry in h["shapes"].items() for r in entry.values() if "error" not in r]


def hold(h: dict, link: str) -> str:
    """README "Does CartPole's solve hold?": the matrix's verdict."""
    runs = _runs(h)
    held = sum(r["held"] for _, r in runs)
    widest = [r["crossed_at"] for shape, r in runs if shape == "8x256"]
    others = [r["crossed_at"] for shape, r in runs if shape != "8x256"]
    return (f"**It held in {held} of {len(runs)} runs**; the lowest return100 in any span was "
            f"{min(r['min_in_span'] for _, r in runs):.0f}. The first {h['plan']['target']:g} came after "
            f"{_range(others)} s (8 x 256: {_range(widest)} s).")


def learning_table(results: dict, link: str) -> str:
    """README "Learning": the table learning.md holds."""
    table = "\n".join(line for line in learning.markdown(results).splitlines() if line.startswith("|"))
    parts = [table, "\n".join(learning.gap_lines(results)).strip(), learning.load_line(results)]
    return "\n\n".join(part for part in parts if part)


def atari_throughput(a: dict, link: str) -> str:
    t = a["throughput"]
    theirs = t["sb3"]
    by_threads = theirs["by_threads"]
    other = next((f"; {float(v['median']):.0f} with {k}" for k, v in sorted(by_threads.items())
                  if int(k) != theirs["torch_threads"]), "")
    seeds = len(t["relayrl"]["steady_steps_per_second"]["runs"])
    return "\n".join([
        f"| {a['game']} | RelayRL A2C (preset: 2 actors x 8 envs, Nature CNN) | SB3 A2C, CnnPolicy, zoo Atari "
        "settings | ratio |",
        "|---|---|---|---|",
        f"| env steps/s through the whole pipeline ({seeds} seeds, interleaved in one run) | "
        f"{t['relayrl']['steady_steps_per_second']['median']:.0f} | {theirs['steady_steps_per_second']['median']:.0f} "
        f"({theirs['torch_threads']} torch threads{other}) | {t['ratio']:.2f}x |",
    ])


def atari_costs(a: dict, link: str) -> str:
    ms = a["costs"]["ms_per_env_step"]
    cores = a["costs"]["cores"]
    total = ms["emulation"] + ms["inference_1"] + ms["learner_1"]
    sb3 = a["throughput"]["sb3"]["steady_steps_per_second"]["median"]
    return "\n".join([
        f"- {ms['emulation']:.2f} ms of emulation and preprocessing (ale-py, 8 envs);",
        f"- {ms['inference_1']:.2f} ms of CNN inference (batch 8, one torch thread);",
        f"- {ms['learner_1']:.2f} ms of learner forward and backward on one thread, {ms['learner_2']:.2f} on two.",
        "",
        f"That is {total:.2f} ms of CPU an env step: {cores} cores compute at most about "
        f"{cores / total * 1000:,.0f} env steps/s, however well the work overlaps, and 3x SB3 would be about "
        f"{3 * sb3:,.0f}. With a GPU learner its share leaves the CPUs and the actors' own work caps near "
        f"{cores / (ms['emulation'] + ms['inference_1']) * 1000:,.0f} env steps/s on these {cores} cores; no GPU "
        "was lent to measure it.",
    ])


def atari_learning(a: dict, link: str) -> str:
    learn = a["learning"]
    ours, theirs = learn["relayrl"], learn["sb3"]
    return (f"{a['game']}: both sides for {learn['env_steps']:,} env steps on the same id, seed 0 "
            f"([curves]({link}{learn['curve_png']})): the mean true score of the last 100 training games was "
            f"{ours['mean_score_last_100']:.1f} for RelayRL ({ours['wall_seconds'] / 60:.0f} min) and "
            f"{theirs['mean_score_last_100']:.1f} for SB3 A2C ({theirs['wall_seconds'] / 60:.0f} min), against "
            f"{learn['random_mean_score']:.1f} for a random policy ({len(learn['random_scores']['runs'])} games). "
            f"{atari.quarters_sentence(learn)}.")


def learners_tables(results: dict, link: str) -> str:
    """README "Several learners": learners.md's tables (the curves per env, the all-reduce's cost)."""
    lines = learners.markdown(results).splitlines()
    body = lines[lines.index("") + 1:]  # after the title
    return "\n".join(line.replace("## ", "**", 1) + "**" if line.startswith("## ") else line for line in body).strip()


def domains_table(results: dict, link: str) -> str:
    """README "Every space": each domain's standard task against SB3 A2C, the rows of domains.md that ran."""
    lines = domains.markdown(results).splitlines()
    return "\n".join(line for line in lines if line.startswith("|") and "not run yet" not in line)


# name -> (results file, renderer)
SECTIONS: dict[str, tuple[str, Callable[[dict, str], str]]] = {
    "performance": ("bench.json", performance),
    "hold": ("hold.json", hold),
    "learning": ("learning.json", learning_table),
    "domains": ("domains.json", domains_table),
    "learners": ("learners.json", learners_tables),
    "domains-retuned": ("retuned/domains.json", domains_table),
    "atari-throughput": ("atari.json", atari_throughput),
    "atari-costs": ("atari.json", atari_costs),
    "atari-learning": ("atari.json", atari_learning),
    "atari-learning-spaceinvaders": ("atari-spaceinvaders.json", atari_learning),
}


def render(name: str, link: str) -> str:
    if name not in SECTIONS:
        raise KeyError(f"no renderer for generated block {name!r}; known: {', '.join(SECTIONS)}")
    results_file, renderer = SECTIONS[name]
    return f"{renderer(load(results_file), link)}\n\n{source(results_file, link)}\n"


def render_doc(text: str, link: str) -> str:
    """``text`` with every generated block's body written afresh; ``link``: the results folder from there."""
    return BLOCK.sub(lambda m: f"{HEADER.format(name=m['name'])}\n{render(m['name'], link)}{m.group(4)}", text)


def names_in(text: str) -> list[str]:
    return [m["name"] for m in BLOCK.finditer(text)]


def link_from(doc: Path) -> str:
    depth = len(doc.relative_to(REPO).parts) - 1
    return "../" * depth + "benchmarks/results/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relayrl_cli.bench.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a document would change")
    args = parser.parse_args(argv)
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        fresh = render_doc(text, link_from(doc))
        if fresh != text:
            stale.append(doc.relative_to(REPO))
            if not args.check:
                doc.write_text(fresh)
    verb = "differ from the results" if args.check else "rewritten"
    print(f"{', '.join(map(str, stale))}: {verb}" if stale else "documents match the results")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
