"""device.json as Markdown (relayrl_cli.bench.device): what ran where, each part's figures, what was skipped."""

from __future__ import annotations

import time


def _n(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def _gpu(summary: dict | None) -> str:
    if summary is None:
        return "not measured"
    return f"{summary['mean_percent']:.0f}% mean, {summary['max_percent']:.0f}% peak"


def _when(seconds: float | None) -> str:
    return "n/a" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def markdown(r: dict) -> str:
    pv, m = r["provenance"], r["machine"]
    gpu = m["gpu"]
    commit = pv["commit"] or (f"{r['commit_noted_in_whl']} (noted in .whl/COMMIT; no git here)"
                              if r.get("commit_noted_in_whl") else "unknown")
    lines = [
        "# Device benchmark" + (" (quick: smoke-test budgets on the CPU; figures mean nothing)" if r["quick"] else ""),
        "",
        f"Learner on **{r['device']}**; {m['cpu_count']} cores; GPU: {gpu.get('name') or 'none'} (driver "
        f"{gpu.get('driver') or 'n/a'}, CUDA runtime {gpu.get('cuda_runtime') or 'n/a'}); torch {m['torch']}, "
        f"Python {m['python']}, {m['platform']}.",
        f"Commit {commit}{' with uncommitted changes' if pv['dirty'] else ''}; "
        f"`{pv['command']}`; {_when(r['started_at'])} to {_when(pv['finished_at'])} ({r.get('seconds')} s of a "
        f"{r['budget_seconds']:.0f} s budget); load average {r['load_average_at_start']} at the start, "
        f"{pv['load_average_at_end']} at the end. Fleet: {r['fleet']} actor process(es).",
        "",
    ]
    lines += correctness_lines(r.get("correctness"))
    lines += atari_lines(r.get("atari"), r["game"])
    lines += a3c_lines(r.get("a3c"))
    lines += cartpole_lines(r.get("cartpole"))
    if r["skipped"] or r["failed"]:
        lines += ["## Not measured", ""]
        lines += [f"- skipped {s['part']}: {s['why']}" for s in r["skipped"]]
        lines += [f"- **failed** {f['part']}: {f['error'].splitlines()[-1] if f['error'] else ''}" for f in r["failed"]]
        lines.append("")
    return "\n".join(lines) + "\n"


def correctness_lines(c: dict | None) -> list[str]:
    if c is None:
        return []
    lines = ["## Correctness: the device against the CPU, same fixed batch", "",
             f"Tolerance (TF32 off): relative {c['tolerance_strict']['rtol']:g} on each loss term and, norm-wise, "
             f"on each parameter's gradient; with torch's settings as the learner runs (cuDNN's TF32 on) the "
             f"difference is shown beside it.", "",
             "| batch | samples | loss terms, max rel. diff | gradients, max rel. diff | with TF32 (loss / grads) | "
             "within tolerance |", "|---|---|---|---|---|---|"]
    for name, case in c["cases"].items():
        s, t = case["strict"], case["tf32"]
        lines.append(f"| {name} | {case['samples']} | {s['loss_terms_max_relative']:.2e} | "
                     f"{s['gradients_max_relative']:.2e} | {t['loss_terms_max_relative']:.2e} / "
                     f"{t['gradients_max_relative']:.2e} | {'yes' if case['passed'] else '**no**'} |")
    lines.append("")
    for key, label in (("update_on_device", f"on {c['device']}"), ("update_on_one_cpu_thread", "on one CPU thread")):
        u = c.get(key)
        if u is not None:
            syncs = ("" if u["synchronisations_per_update"] is None else
                     f"; host synchronisations: {u['synchronisations_per_update']} per update, "
                     f"{u['synchronisations_per_weights_copy']} per weights copy")
            lines.append(f"- One A2C update of a round of {u['samples']} Atari frames (the fleet x 8 envs x 5 steps), "
                         f"with the weights copied for the broadcast, {label}: {_n(u['ms_per_update'], 2)} ms "
                         f"({u['reps']} reps){syncs}.")
    lines.append("")
    return lines


def atari_lines(a: dict | None, game: str) -> list[str]:
    if not a:
        return []
    ours, sb3 = a.get("relayrl"), a.get("sb3")
    lines = [f"## Atari ({game}): the whole pipeline against SB3 A2C, same run", "",
             "| | env steps/s (steady) | GPU utilisation | update s per batch | actors idle behind the barrier |",
             "|---|---|---|---|---|"]
    if ours:
        barrier = ours.get("a2c_barrier") or {}
        idle = barrier.get("idle_share")
        lines.append(f"| RelayRL A2C, {ours.get('actors')} actor processes x 8 envs, learner on the device | "
                     f"{_n(ours['steady_steps_per_second'])} | {_gpu(ours['gpu'])} | "
                     f"{_n(ours['mean_update_seconds'], 4)} | {_n(None if idle is None else idle * 100, 0, '%')} "
                     f"(round {_n(100 * barrier.get('waiting_for_round_share', 0), 0, '%')}, update "
                     f"{_n(100 * barrier.get('waiting_for_update_share', 0), 0, '%')}) |")
    if sb3:
        lines.append(f"| SB3 A2C, CnnPolicy, zoo settings (16 envs), device {sb3.get('device')} | "
                     f"{_n(sb3['steady_steps_per_second'])} | {_gpu(sb3['gpu'])} | "
                     f"{_n(sb3.get('mean_update_seconds'), 4)} | (one process) |")
    if a.get("ratio") is not None:
        lines.append(f"| **ratio** | **{a['ratio']:.2f}x** | | | |")
    lines.append("")
    ck = a.get("checkpoint")
    if ck:
        lines += [f"Checkpoint {ck['checkpoint']} (tensors saved on {', '.join(ck['saved_on'])}) with CUDA hidden: "
                  f"`relayrl eval`: {ck['eval_output']}; a CPU learner resumed it at {ck['resumed_env_steps']:,} env "
                  f"steps and trained a CPU actor on to version {ck['policy_version_after']} "
                  f"({'loaded' if ck['loaded'] else '**did not load as saved**'}).", ""]
    return lines


def a3c_lines(a: dict | None) -> list[str]:
    if not a:
        return []
    return ["## A3C on the device, same fleet (trajectories: the learner computes each rollout's gradient)", "",
            f"{_n(a['steady_steps_per_second'])} env steps/s, {_n(a['updates_per_second'], 1)} updates/s, mean "
            f"policy lag {_n(a['mean_policy_lag'], 2)}, {a.get('dropped_stale')} contributions dropped as stale, "
            f"update {_n(a['mean_update_seconds'], 4)} s, GPU {_gpu(a['gpu'])}.", ""]


def cartpole_lines(c: dict | None) -> list[str]:
    if not c or not c["curve"]:
        return []
    lines = ["## CartPole's pipeline: the scaling curve", "",
             "| actors | env steps/s (steady) | updates/s | update s per batch | actors idle behind the barrier |",
             "|---|---|---|---|---|"]
    for point in c["curve"]:
        idle = (point.get("a2c_barrier") or {}).get("idle_share")
        lines.append(f"| {point['actors']} | {_n(point['steady_steps_per_second'])} | "
                     f"{_n(point['updates_per_second'], 1)} | {_n(point['mean_update_seconds'], 4)} | "
                     f"{_n(None if idle is None else idle * 100, 0, '%')} |")
    lines.append("")
    return lines
