"""Rendering the kustomizations and reading what they render: shared by the Kubernetes checks."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .conftest import DEPLOY, run, tool

K8S = DEPLOY / "k8s"
TARGETS = ["base", *sorted(f"overlays/{p.name}" for p in (K8S / "overlays").iterdir() if p.is_dir()), "all-components"]
FROM_POD = "set-per-pod"  # stands in for a value the downward API fills in


def all_components_overlay(tmp: Path) -> Path:
    """A throwaway overlay with the base and every component, so each component renders at least once."""
    components = sorted(p for p in (K8S / "components").iterdir() if p.is_dir())
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "namespace: relayrl",
             "resources:", f"  - {os.path.relpath(K8S / 'base', tmp)}", "components:"]
    lines += [f"  - {os.path.relpath(c, tmp)}" for c in components]
    # What components/prometheus-operator needs from its overlay (overlays/monitoring shows it): other values
    # than the defaults there, so the monitoring test can tell they flow into place.
    lines += ["configMapGenerator:", "  - name: relayrl-monitoring", "    literals:", "      - release=prom-test",
              "      - namespace=observability", "    options:", "      disableNameSuffixHash: true",
              "      annotations:", '        config.kubernetes.io/local-config: "true"']
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
        else:
            env[var["name"]] = var.get("value", FROM_POD)  # fieldRef and the like: set per pod
    return env


def render(target: str, scratch: Path) -> list[dict]:
    """`kubectl kustomize` of base, an overlay, or (target "all-components") every component at once."""
    path = all_components_overlay(scratch) if target == "all-components" else K8S / target
    result = run([tool("kubectl"), "kustomize", str(path)])
    assert result.returncode == 0, f"{target}: {result.stderr}"
    return [o for o in yaml.safe_load_all(result.stdout) if o]
