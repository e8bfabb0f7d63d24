"""A run on Kubernetes as one object with a life: `make k8s-run`, `k8s-finish`, `k8s-new-run`, `k8s-delete`.

A run is an overlay (K8S_OVERLAY), a name (RUN) and a namespace (K8S_NAMESPACE). Its name is the learner's
RELAYRL_RUN_NAME, so its checkpoints live in their own folder of the namespace's PVC, and the label
app.kubernetes.io/instance on every object. `run` writes deploy/k8s/runs/RUN/ (a copy of the overlay with
that namespace, name and label; generated, not committed) and applies it; `finish` deletes the run's
workloads and waits until their pods are gone, keeping the namespace, the PVC (every run's checkpoints) and
the token Secret; `new-run` is finish then run under a new name; `delete` also deletes the namespace, with
the checkpoints, and only when told so in as many words.

What each refuses, and why (`kubectl apply` does not prune, and a Job's pod template is immutable):
- starting a run while another run's learner is in the namespace: two learners on one RWO volume;
- switching the live run between a learner Deployment and a learner Job: both would run, serve the same
  Service and resume the same checkpoints;
- re-applying a run whose learner Job completed: that run is finished (the learner would refuse it too);
- a new run under the live run's name: it would resume that run, not start a new one.
The decisions are pure functions (``refusal_to_run``, ``refusal_of_new_run``) over the live objects that
`kubectl get -o json` lists and the rendered ones; tests/deploy/test_k8s_lifecycle.py runs them on real renders.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parents[1] / "k8s"
KUBECTL = "kubectl"
INSTANCE = "app.kubernetes.io/instance"  # the run's name, on every object of the run
PART_OF = "app.kubernetes.io/part-of=relayrl"
AUTH_SECRET, AUTH_KEY = "relayrl-auth", "token"
# A run name is a folder (the learner's --run-name) and a label value: both rules at once.
RUN_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
NAMESPACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
WAIT = "300s"  # the learner's grace period (60 s) with room to spare


class Refusal(Exception):
    """What the operator asked for would break a run; the message says what to do instead."""


# --- the decisions ---------------------------------------------------------------------------------------
def learners(objects: list[dict]) -> list[dict]:
    """The learner workloads among ``objects`` (Deployment or Job, by their pods' component label)."""
    return [o for o in objects if o["kind"] in ("Deployment", "Job")
            and o["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "learner"]


def run_of(obj: dict) -> str:
    return obj["metadata"].get("labels", {}).get(INSTANCE, "(no run name: applied without make k8s-run)")


def completed(job: dict) -> bool:
    return any(c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def refusal_to_run(live: list[dict], rendered: list[dict], run: str) -> str | None:
    """Why applying ``rendered`` (run ``run``) over the ``live`` objects would break something, or None."""
    (new,) = learners(rendered)
    for old in learners(live):
        name = f"{old['kind']} {old['metadata']['name']}"
        if run_of(old) != run:
            return (f"run {run_of(old)} is live ({name}): a second learner would share its volume. Stop it first "
                    f"(make k8s-finish), or make k8s-new-run RUN={run}")
        if old["kind"] != new["kind"]:
            return (f"run {run}'s learner is a {old['kind']} and this overlay makes it a {new['kind']}: kubectl "
                    f"apply does not prune, so both would run on the same checkpoints. make k8s-finish, then "
                    f"make k8s-run again (the run resumes from its checkpoints)")
        if old["kind"] == "Job" and completed(old):
            return (f"run {run} is finished ({name} completed); start another: make k8s-new-run RUN=NEW-NAME "
                    f"(its checkpoints stay beside this run's)")
    return None


def refusal_of_new_run(live: list[dict], run: str) -> str | None:
    """Why ``run`` cannot be a *new* run here, or None."""
    for old in learners(live):
        if run_of(old) == run:
            return (f"run {run} is the live run: a new run under its name would resume it. Pick a new RUN, or "
                    f"restart this one with make k8s-finish then make k8s-run")
    return None


def run_overlay(k8s: Path, overlay: str, run: str, namespace: str) -> Path:
    """Write k8s/runs/RUN/: the overlay copied (so its relative paths hold) with the run's namespace, its name
    as RELAYRL_RUN_NAME and its label on every object. Returns the folder."""
    if not RUN_NAME.fullmatch(run):
        raise Refusal(f"RUN={run!r}: 1-63 letters, digits, '.', '_', '-', starting and ending with a letter or digit")
    if not NAMESPACE.fullmatch(namespace):
        raise Refusal(f"K8S_NAMESPACE={namespace!r} is not a namespace name (lower-case letters, digits, '-')")
    source = k8s / "overlays" / overlay
    if not (source / "kustomization.yaml").is_file():
        known = sorted(p.name for p in (k8s / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
        raise Refusal(f"K8S_OVERLAY={overlay!r}: no such overlay ({', '.join(known)})")
    target = k8s / "runs" / run
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    path = target / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    # Other kustomizations it builds on (../../base, ../monitoring), re-pointed from the copy's folder.
    for key in ("resources", "components"):
        kustomization[key] = [os.path.relpath(source / entry, target) if (source / entry).is_dir() else entry
                              for entry in kustomization.get(key, [])]
    kustomization["namespace"] = namespace
    generators = kustomization.setdefault("configMapGenerator", [])
    learner = next((g for g in generators if g["name"] == "relayrl-learner"), None)
    if learner is None:
        learner = {"name": "relayrl-learner", "behavior": "merge", "literals": []}
        generators.append(learner)
    learner["literals"] = [x for x in learner.get("literals", []) if not x.startswith("RELAYRL_RUN_NAME=")]
    learner["literals"].append(f"RELAYRL_RUN_NAME={run}")
    # The images pinned to the digests `make push-images` recorded: a tag can be pushed over, a digest cannot.
    digests = k8s.parent / "images" / "digests.txt"
    if digests.is_file():
        pins = [line.strip().split("@", 1) for line in digests.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        kustomization["images"] = [{"name": name, "digest": digest} for name, digest in pins]
    # Not in selectors: those are immutable, and a run's objects are replaced, not edited, between runs.
    kustomization.setdefault("labels", []).append(
        {"pairs": {INSTANCE: run}, "includeSelectors": False, "includeTemplates": True})
    header = (f"# GENERATED by `make k8s-run` from overlays/{overlay} for run {run} in namespace {namespace}: edit "
              "that overlay, not this copy.\n")
    path.write_text(header + yaml.safe_dump(kustomization, sort_keys=False))
    return target


# --- kubectl ---------------------------------------------------------------------------------------------
def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    print("+ kubectl " + " ".join(args), file=sys.stderr)
    result = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result


def render(folder: Path) -> list[dict]:
    return [o for o in yaml.safe_load_all(kubectl("kustomize", str(folder)).stdout) if o]


def live_workloads(namespace: str) -> list[dict]:
    result = kubectl("get", "deployments,jobs", "-n", namespace, "-l", PART_OF, "-o", "json")
    return yaml.safe_load(result.stdout)["items"]


def ensure_token(namespace: str) -> None:
    """The Secret both services read their token from, made once per namespace with a random token."""
    found = kubectl("get", "secret", AUTH_SECRET, "-n", namespace, "-o", "name", check=False)
    if found.returncode == 0:
        return
    if "NotFound" not in found.stderr:
        raise SystemExit(f"kubectl get secret {AUTH_SECRET} failed:\n{found.stderr}")
    with tempfile.TemporaryDirectory() as tmp:  # the token never appears on a command line
        token = Path(tmp) / AUTH_KEY
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        kubectl("create", "secret", "generic", AUTH_SECRET, "-n", namespace, f"--from-file={AUTH_KEY}={token}")


def run(overlay: str, name: str, namespace: str) -> None:
    folder = run_overlay(K8S, overlay, name, namespace)
    rendered = render(folder)
    refusal = refusal_to_run(live_workloads(namespace), rendered, name)
    if refusal:
        raise Refusal(refusal)
    (ns,) = [o for o in rendered if o["kind"] == "Namespace"]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(ns))
    ensure_token(namespace)
    kubectl("apply", "-k", str(folder))
    print(f"run {name} started in namespace {namespace} from overlays/{overlay}; "
          f"watch: kubectl -n {namespace} get pods -w", file=sys.stderr)


def finish(namespace: str) -> None:
    """Delete the workloads (and the autoscaler) and wait for their pods to go: never two learners after."""
    keda = kubectl("api-resources", "--api-group=keda.sh", "-o", "name", check=False).stdout
    if "scaledobjects" in keda:
        kubectl("delete", "scaledobjects", "-n", namespace, "-l", PART_OF, "--ignore-not-found")
    kubectl("delete", "deployments,jobs", "-n", namespace, "-l", PART_OF, "--ignore-not-found",
            "--cascade=foreground", f"--timeout={WAIT}")
    if kubectl("get", "pods", "-n", namespace, "-l", PART_OF, "-o", "name").stdout.strip():
        kubectl("wait", "--for=delete", "pods", "-n", namespace, "-l", PART_OF, f"--timeout={WAIT}")
    print(f"finished: no RelayRL workload left in {namespace}; the PVC relayrl-checkpoints (every run's "
          f"checkpoints) and the Secret {AUTH_SECRET} are kept", file=sys.stderr)


def new_run(overlay: str, name: str, namespace: str) -> None:
    run_overlay(K8S, overlay, name, namespace)  # a bad name or overlay fails before anything is deleted
    refusal = refusal_of_new_run(live_workloads(namespace), name)
    if refusal:
        raise Refusal(refusal)
    finish(namespace)
    run(overlay, name, namespace)


def delete(namespace: str, confirm: str) -> None:
    if confirm != "yes":
        raise Refusal(f"this deletes namespace {namespace} with the PVC relayrl-checkpoints (the checkpoints of "
                      f"every run in it) and the Secret {AUTH_SECRET}. To stop a run and keep them: make "
                      f"k8s-finish. To delete them: make k8s-delete DELETE_CHECKPOINTS=yes")
    finish(namespace)
    kubectl("delete", "namespace", namespace, "--ignore-not-found", f"--timeout={WAIT}")


def main(argv: list[str] | None = None) -> int:
    global KUBECTL
    parser = argparse.ArgumentParser(prog="k8s-run", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "finish", "new-run", "delete"))
    parser.add_argument("--overlay", default="default", help="deploy/k8s/overlays/NAME (K8S_OVERLAY)")
    parser.add_argument("--run", default="", help="the run's name (RUN)")
    parser.add_argument("--namespace", default="relayrl", help="K8S_NAMESPACE")
    parser.add_argument("--delete-checkpoints", default="", help="yes: delete also deletes every checkpoint")
    parser.add_argument("--kubectl", default="kubectl", help="the kubectl to run (KUBECTL)")
    args = parser.parse_args(argv)
    KUBECTL = args.kubectl
    try:
        if args.command in ("run", "new-run") and not args.run:
            raise Refusal(f"name the run: make k8s-{args.command} RUN=NAME (its checkpoint folder and label)")
        if args.command == "run":
            run(args.overlay, args.run, args.namespace)
        elif args.command == "new-run":
            new_run(args.overlay, args.run, args.namespace)
        elif args.command == "finish":
            finish(args.namespace)
        else:
            delete(args.namespace, args.delete_checkpoints)
    except Refusal as refusal:
        print(f"k8s-{args.command}: refused: {refusal}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
