"""bench.json as a Markdown table, and how every suite writes its results."""

from __future__ import annotations

import json
from pathlib import Path

from relayrl_cli.bench import provenance


def write_results(path: Path, results: dict, table: str) -> None:
    """``results`` as the JSON file ``path`` (written whole, then renamed: a suite stopped half-way never
    leaves half a file to resume from) and ``table`` beside it, with the suffix .md. The file carries the
    provenance of the invocation writing it (relayrl_cli.bench.provenance)."""
    results["provenance"] = provenance.invocation()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)
    path.with_suffix(".md").write_text(table)


def _fmt(s: dict, scale: float = 1.0, digits: int = 0) -> str:
    return f"{s['median'] * scale:,.{digits}f} ({s['min'] * scale:,.{digits}f}–{s['max'] * scale:,.{digits}f})"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"# RelayRL benchmark{' (quick)' if r['quick'] else ''}",
        "",
        f"{m['cpu_count']} cores, {m['platform']}, Python {m['python']}, torch {m['torch']} "
        f"({m['torch_threads_services']} thread per service). Median (min–max) of {r['plan']['reps']} runs.",
        "",
    ]
    if r.get("vs_sb3"):
        v, s = r["vs_sb3"], r["sb3"]
        lines += [
            "| headline | RelayRL | SB3 A2C | ratio |",
            "|---|---|---|---|",
            f"| env steps/s ({v['steps_per_second_pipeline']}) | "
            f"{_fmt(r['pipeline'][v['steps_per_second_pipeline']]['steady_steps_per_second'])} | "
            f"{_fmt(s['steps_per_second'])} | {v['steps_per_second_ratio']:.1f}x |",
            f"| seconds to a held mean return of {r['solve']['target']:g} | "
            f"{_fmt(r['solve']['wall_seconds'], digits=1)} | {_fmt(s['solve']['wall_seconds'], digits=1)} | "
            f"{_ratio(v['solve_time_ratio'])} |",
            f"| seconds to its first crossing | {_fmt(r['solve']['first_crossing']['wall_seconds'], digits=1)} | "
            f"{_fmt(s['solve']['first_crossing']['wall_seconds'], digits=1)} | "
            f"{_ratio(v['first_crossing_time_ratio'])} |",
            f"| env steps to the held solve | {_fmt(r['solve']['env_steps'])} | {_fmt(s['solve']['env_steps'])} | |",
        ]
        if "solve_fast" in r:  # results from before issue 24 lack it
            lines += [
                f"| seconds to a held mean return of {r['solve']['target']:g}, fastest configuration (`relayrl train "
                f"{' '.join(r['solve_fast']['extra_args'])}`) | {_fmt(r['solve_fast']['wall_seconds'], digits=1)} | "
                f"{_fmt(s['solve']['wall_seconds'], digits=1)} | {_ratio(v['fast_solve_time_ratio'])} |",
                f"| env steps to that held solve | {_fmt(r['solve_fast']['env_steps'])} | "
                f"{_fmt(s['solve']['env_steps'])} | |",
            ]
        lines += [
            "",
            f"A held solve: the first time the mean return of the last 100 episodes reaches the target and then "
            f"stays at or above it for {r['solve']['hold']:.0%} of as many env steps again; its time is that of "
            "the crossing, from launching the command. inf: no held solve within the run.",
            "",
        ]
    sizes = sorted(r["ceilings"], key=int)
    lines += ["| ceiling (one core) | " + " | ".join(f"{n} envs" for n in sizes) + " |",
              "|---" * (len(sizes) + 1) + "|"]
    for key, label in (("env_only_steps_per_second", "env, random actions"),
                       ("env_and_inference_steps_per_second", "env + batched inference")):
        lines.append(f"| {label} | " + " | ".join(_fmt(r["ceilings"][n][key]) for n in sizes) + " |")
    best = r["pipeline_best"]
    n = r["pipeline"][best]["num_envs_per_actor"]
    lines += ["", f"Headline pipeline ({best}{'' if r['pipeline_best_solves'] else ', did NOT solve'}) / one-core "
                  f"env + inference ceiling at its {n} envs per actor: {r['pipeline_vs_ceiling']:.0%}", "",
              "| pipeline (algo/transport/actors) | envs per actor | env steps/s | vs one-core ceiling | updates/s | "
              "samples/s | mean policy lag |",
              "|---|---|---|---|---|---|---|"]
    for key, p in r["pipeline"].items():
        lines.append(f"| {key} | {p['num_envs_per_actor']} | {_fmt(p['steady_steps_per_second'])} | "
                     f"{p['vs_ceiling']:.0%} | {_fmt(p['updates_per_second'], digits=1)} | "
                     f"{_fmt(p['samples_per_second'])} | {_fmt(p['mean_policy_lag'], digits=2)} |")
    t = r["transport"]
    lines.append("")
    wide = "throughput configuration, `relayrl train " + " ".join(r["solve_wide"]["extra_args"]) + "`"
    fast = "fastest configuration, `relayrl train " + " ".join(r.get("solve_fast", {}).get("extra_args", [])) + "`"
    for section, label in (("solve", "default `relayrl train`"), ("solve_wide", wide), ("solve_fast", fast)):
        if section not in r:
            continue
        v = r[section]
        first = v["first_crossing"]
        lines.append(f"Time to a held solve ({label}, target {v['target']:g}): {_fmt(v['wall_seconds'], digits=1)} s, "
                     f"{_fmt(v['env_steps'])} env steps{'' if v['all_solved'] else ' (NOT all runs held a solve)'}; "
                     f"first crossing {_fmt(first['wall_seconds'], digits=1)} s, {_fmt(first['env_steps'])} env steps.")
    lines += [
        "",
        "| transport | value |",
        "|---|---|",
        f"| rollout encode / decode per transition | {t['codec']['encode_us_per_transition']:.2f} / "
        f"{t['codec']['decode_us_per_transition']:.2f} µs ({t['codec']['rollout_bytes_per_transition']:.0f} bytes) |",
        f"| weights broadcast, CartPole MLP ({t['gradient_cartpole']['parameters']:,} params) | "
        f"{_fmt(t['broadcast_cartpole']['milliseconds'], digits=2)} ms |",
        f"| weights broadcast, {t['gradient_1m_params']['parameters']:,} params | "
        f"{_fmt(t['broadcast_1m_params']['milliseconds'], digits=1)} ms |",
        f"| gradient message, CartPole MLP / 1M params | {t['gradient_cartpole']['gradient_message_bytes']:,} / "
        f"{t['gradient_1m_params']['gradient_message_bytes']:,} bytes |",
    ]
    if "broadcast_atari_cnn" in t:  # results from before the CNN lack it
        cnn = t["broadcast_atari_cnn"]
        lines.append(f"| weights broadcast, Atari Nature CNN ({cnn['weights_message_bytes']:,} bytes) | "
                     f"{_fmt(cnn['milliseconds'], digits=1)} ms |")
    lines.append("")
    return "\n".join(lines)
