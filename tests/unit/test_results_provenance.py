"""Every committed benchmark results file can be traced to the code and the run that wrote it: a
``provenance`` block (commit in HEAD's history, a clean tree, the command, the machine, start and end, the
load) and a ``run`` stamp on each run, or an entry in benchmarks/results/legacy.toml saying why not.

The provenance helper itself is checked on a results file written here by the same writer the suites use."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from relayrl_cli.bench import provenance
from relayrl_cli.bench.report import write_results

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
LEGACY = tomllib.loads((RESULTS / "legacy.toml").read_text())
INVOCATION_KEYS = {"commit", "dirty", "command", "machine", "started_at", "finished_at", "load_average_at_end"}
RUN_KEYS = {"commit", "dirty", "command", "started_at", "finished_at", "load_average_at_start", "load_average_at_end"}


def committed_results() -> list[str]:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "benchmarks/results/*.json"], capture_output=True,
                            text=True, check=True).stdout.split()
    return sorted(str(Path(p).relative_to("benchmarks/results")) for p in listed)  # subfolders' files too


def in_history(commit: str) -> bool:
    """Whether ``commit`` is HEAD or one of its ancestors (a shallow clone lacks them: clone in full)."""
    done = subprocess.run(["git", "-C", str(REPO), "merge-base", "--is-ancestor", commit, "HEAD"], capture_output=True)
    return done.returncode == 0


def run_stamps(node, where: str = ""):
    """(path, stamp) for every ``run`` stamp in a results file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, dict):
                yield where, value
            else:
                yield from run_stamps(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from run_stamps(value, f"{where}/{i}")


def problems(name: str, results: dict) -> list[str]:
    """What keeps a results file from being traced; [] when nothing does."""
    found = []
    block = results.get("provenance")
    if not isinstance(block, dict) or not INVOCATION_KEYS <= set(block):
        return [f"{name}: no provenance block with {sorted(INVOCATION_KEYS)}"]
    stamps = list(run_stamps(results))
    if not stamps:
        found.append(f"{name}: no run carries a run stamp")
    for where, stamp in [("provenance", block), *stamps]:
        missing = (INVOCATION_KEYS if where == "provenance" else RUN_KEYS) - set(stamp)
        if missing:
            found.append(f"{name} {where}: missing {sorted(missing)}")
            continue
        if stamp["commit"] is None or not in_history(stamp["commit"]):
            found.append(f"{name} {where}: commit {stamp['commit']} is not in HEAD's history")
        if stamp["dirty"] is not False:
            found.append(f"{name} {where}: written from a tree that differed from its commit")
        if not stamp["started_at"] <= stamp["finished_at"]:
            found.append(f"{name} {where}: ends before it starts")
    return found


@pytest.mark.parametrize("name", committed_results())
def test_each_committed_results_file_carries_provenance_or_is_listed_as_legacy(name):
    results = json.loads((RESULTS / name).read_text())
    if name in LEGACY:
        entry = LEGACY[name]
        assert entry.get("reason", "").strip() and entry.get("rerun", "").strip(), f"{name}: say why, and what then"
        assert "provenance" not in results, f"{name} carries provenance now: take it out of legacy.toml"
        return
    assert problems(name, results) == []


def test_legacy_lists_only_committed_files():
    assert set(LEGACY) <= set(committed_results())


def test_a_file_written_by_the_suites_writer_passes_and_a_stripped_one_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["relayrl", "bench", "--suite", "hold"])
    results = {"shapes": {"1x8": {"0": {"seed": 0, **provenance.timed(lambda: {"held": True})}}}}
    write_results(tmp_path / "hold.json", results, "table")
    written = json.loads((tmp_path / "hold.json").read_text())
    block = written["provenance"]
    assert block["command"] == "relayrl bench --suite hold" and block["machine"]["cpu_count"] >= 1
    assert block["commit"] == provenance.code()["commit"] and len(block["load_average_at_end"]) == 3
    run = written["shapes"]["1x8"]["0"]["run"]
    assert run["started_at"] <= run["finished_at"] <= block["finished_at"]
    # this tree may be dirty while the test runs: judge the rest of the file on a clean stamp
    for stamp in (block, run):
        stamp["dirty"] = False
    assert problems("hold.json", written) == []

    assert problems("x.json", {k: v for k, v in written.items() if k != "provenance"}) != []
    no_runs = {"provenance": block, "shapes": {}}
    assert problems("x.json", no_runs) == ["x.json: no run carries a run stamp"]
    foreign = json.loads(json.dumps(written))
    foreign["shapes"]["1x8"]["0"]["run"]["commit"] = "0" * 40
    assert any("not in HEAD's history" in p for p in problems("x.json", foreign))
    dirty = json.loads(json.dumps(written))
    dirty["provenance"]["dirty"] = True
    assert any("differed from its commit" in p for p in problems("x.json", dirty))
