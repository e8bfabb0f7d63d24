"""Dockerfiles: hadolint, plus what it cannot know about this repository (copied paths, stages, users)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path

import pytest

from .conftest import DEPLOY, REPO, run, tool

DOCKERFILES = sorted(p for p in (DEPLOY / "docker").glob("Dockerfile*") if not p.name.endswith(".dockerignore"))
HEALTH_CHECK = DEPLOY / "docker" / "grpc-health-check.py"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            result.append([])
        result[-1].append(ins)
    return result


def test_found_all_images():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile", "Dockerfile.cuda", "Dockerfile.actor"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile):
    result = run([tool("hadolint"), "--format", "json", str(dockerfile)])
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and not findings, json.dumps(findings, indent=1)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_paths_exist_and_pass_the_dockerignore(dockerfile):
    ignore = Path(f"{dockerfile}.dockerignore")
    assert ignore.is_file(), f"BuildKit looks for {ignore.name} next to the Dockerfile"
    allowed = [line[1:].rstrip("/") for line in ignore.read_text().splitlines() if line.startswith("!")]
    for word, args in instructions(dockerfile):
        if word != "COPY" or "--from=" in args:
            continue
        *sources, _dest = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source}: no such path"
            assert any(source.rstrip("/") == a or fnmatch.fnmatch(source, a) for a in allowed), \
                f"{dockerfile.name}: COPY {source} is excluded by {ignore.name}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_stubs_generated_and_runtime_stage_is_lean(dockerfile):
    all_stages = stages(dockerfile)
    text = " ".join(args for stage in all_stages[:-1] for _, args in stage)
    assert "grpc_tools.protoc" in text and "proto/relayrl/v1/relayrl.proto" in text, "stubs are not generated"
    final = all_stages[-1]
    runs = " ".join(args for word, args in final if word == "RUN")
    for build_tool in ("pip install", "gcc", "build-essential", "grpcio-tools", "python3-venv", "-dev"):
        assert build_tool not in runs, f"final stage installs {build_tool}"
    copies = [args for word, args in final if word == "COPY"]
    assert any(a.startswith("--from=builder /opt/venv") for a in copies), "final stage must copy the venv"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_numeric_non_root_user_with_relayrl_entrypoint(dockerfile):
    final = dict((word, args) for word, args in stages(dockerfile)[-1])  # the last of each instruction
    uid = final["USER"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "Kubernetes' runAsNonRoot can only verify a numeric UID"
    assert json.loads(final["ENTRYPOINT"]) == ["relayrl"]
    assert json.loads(final["CMD"])[0] in ("learner", "actor")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_health_check_client_installed_on_path(dockerfile):
    """The Compose healthchecks call `grpc-health-check`; the image must put it on PATH, executable."""
    copies = [args for word, args in stages(dockerfile)[-1] if word == "COPY"]
    assert f"deploy/docker/{HEALTH_CHECK.name} /usr/local/bin/grpc-health-check" in copies
    assert os.access(HEALTH_CHECK, os.X_OK), "COPY keeps the mode: the script must be executable in git"


def test_dockerignore_files_agree():
    """BuildKit reads the per-Dockerfile files; the classic builder and Podman read only the context's
    .dockerignore. Where the repository has one, it must be the same allow-list."""
    ignores = {p.name: p.read_text() for p in (DEPLOY / "docker").glob("*.dockerignore")}
    if (REPO / ".dockerignore").exists():
        ignores[".dockerignore"] = (REPO / ".dockerignore").read_text()
    assert len(set(ignores.values())) == 1, f"the images build from the same allow-list: {sorted(ignores)}"
