"""Rendering the kustomizations and reading what they render: shared by the Kubernetes checks."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

from .conftest import DEPLOY, load_config, run, tool

K8S = DEPLOY / "k8s"
TARGETS = ["base", *sorted(f"overlays/{p.name}" for p in (K8S / "overlays").iterdir() if p.is_dir()), "all-components"]
ALL_COMPONENTS_MONITORING = {"release": "prom-test", "namespace": "observability",
                             "prometheus": "http://prom-test-prometheus.observability.svc:9090"}
FROM_POD = "set-per-pod"  # stands in for a value the downward API fills in
SECRET_STAND_IN = "stand-in-for-a-secret-value-0123456789"  # a Secret's value (long enough for a token)
# What a Secret made by cert-manager's Certificate holds (components/tls mounts such Secrets whole).
CERTIFICATE_KEYS = ("tls.crt", "tls.key", "ca.crt")
RANKS = 3  # all-components' learner ranks: another count than overlays/ranks', so tests can tell it flows into place


def nested_components() -> set[Path]:
    """Components that another component lists (components/learner-ranks lists learner-job)."""
    nested = set()
    for kustomization in (K8S / "components").glob("*/kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text()).get("components", []):
            nested.add((kustomization.parent / entry).resolve())
    return nested


def all_components_overlay(tmp: Path) -> Path:
    """A throwaway overlay with the base and every component, so each component renders at least once: a
    component that another lists renders through that one (listed twice, its objects would be made twice)."""
    nested = nested_components()
    components = sorted(p for p in (K8S / "components").iterdir() if p.is_dir() and p.resolve() not in nested)
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "namespace: relayrl",
             "resources:", f"  - {os.path.relpath(K8S / 'base', tmp)}", "components:"]
    lines += [f"  - {os.path.relpath(c, tmp)}" for c in components]
    # What components/prometheus-operator needs from its overlay (overlays/monitoring shows it): other values
    # than the defaults there, so the monitoring test can tell they flow into place.
    lines += ["configMapGenerator:", "  - name: relayrl-monitoring", "    literals:"]
    lines += [f"      - {key}={value}" for key, value in ALL_COMPONENTS_MONITORING.items()]
    lines += ["    options:", "      disableNameSuffixHash: true", "      annotations:",
              '        config.kubernetes.io/local-config: "true"']
    # What components/learner-ranks needs from its overlay (overlays/ranks shows it): how many rank pods.
    lines += ["  - name: relayrl-learner", "    behavior: merge", "    literals:",
              f"      - RELAYRL_LEARNER_NODES={RANKS}"]
    (tmp / "kustomization.yaml").write_text("\n".join(lines) + "\n")
    return tmp


def by_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def service_of(container) -> str:
    """learner or actor, from the container's command (`relayrl learner` / `relayrl actor`)."""
    return (container.get("args") or container.get("command"))[0]


def workloads(objects):
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def pods(objects):
    """(workload name, pod template) for every workload."""
    return [(o["metadata"]["name"], o["spec"]["template"]) for o in workloads(objects)]


def learner_workload(objects) -> dict:
    """The one workload running the learner: the base's Deployment, or components/learner-job's Job."""
    (learner,) = [o for o in workloads(objects)
                  if service_of(o["spec"]["template"]["spec"]["containers"][0]) == "learner"]
    return learner


def container_env(objects, container) -> dict[str, str]:
    """Every variable a container gets: envFrom ConfigMaps, then env (literal values or references)."""
    configmaps = by_kind(objects, "ConfigMap")
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if ref:
            env[var["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            env[var["name"]] = SECRET_STAND_IN
        else:
            env[var["name"]] = var.get("value", FROM_POD)  # fieldRef and the like: set per pod
    return env


def render(target: str, scratch: Path) -> list[dict]:
    """`kubectl kustomize` of base, an overlay, or (target "all-components") every component at once."""
    path = all_components_overlay(scratch) if target == "all-components" else K8S / target
    result = run([tool("kubectl"), "kustomize", str(path)])
    assert result.returncode == 0, f"{target}: {result.stderr}"
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def secret_files(template, container) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret, key) for every file a Secret volume mounted in it provides."""
    volumes = {v["name"]: v["secret"] for v in template["spec"].get("volumes", []) if "secret" in v}
    files = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"])
        if secret is not None:
            items = secret.get("items") or [{"key": key, "path": key} for key in CERTIFICATE_KEYS]
            for item in items:
                files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


def pod_config(objects, template, container, scratch: Path):
    """The service's config from the container's environment, as the service would load it; files that
    Secret volumes provide (TLS certificates) stand in as files under ``scratch``, and a path no Secret
    provides stays as it is, so the loader refuses it as the service would at start."""
    env = container_env(objects, container)
    files = secret_files(template, container)
    for name, value in env.items():
        if value in files:
            stand_in = scratch / value.strip("/").replace("/", "_")
            stand_in.write_text(SECRET_STAND_IN)  # a token file must hold a token; certificates only exist
            env[name] = str(stand_in)
    return load_config(service_of(container), env)


def render_copy(tmp: Path, target: str, namespace: str) -> list[dict]:
    """Render ``target`` from a copy of deploy/ whose kustomization there has ``namespace`` instead: how a
    second run goes beside the first (docs/DEPLOY.md)."""
    copy = tmp / "deploy"
    shutil.copytree(DEPLOY, copy, symlinks=True)
    kustomization = copy / "k8s" / target / "kustomization.yaml"
    text, edits = re.subn(r"(?m)^namespace: .*$", f"namespace: {namespace}", kustomization.read_text())
    assert edits == 1, f"{target} sets no namespace of its own"
    kustomization.write_text(text)
    result = run([tool("kubectl"), "kustomize", str(kustomization.parent)])
    assert result.returncode == 0, f"{target} under {namespace}: {result.stderr}"
    return [o for o in yaml.safe_load_all(result.stdout) if o]
