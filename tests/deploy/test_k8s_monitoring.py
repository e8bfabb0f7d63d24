"""kube-prometheus-stack out of the box: the monitoring stack (its release label and namespace) is named once,
in the overlay's local-config ConfigMap relayrl-monitoring, and lands on the PodMonitor and PrometheusRule
(which its Prometheus selects by `release`) and on the NetworkPolicies' metrics rules (scrapes come from its
namespace), for the overlay as shipped and for other values."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import REPO
from .kustomize import ALL_COMPONENTS_MONITORING, K8S, by_kind

MONITORING_TARGETS = ["overlays/monitoring", "overlays/autoscaling", "overlays/production", "all-components"]


def settings(target: str) -> dict[str, str]:
    if target == "all-components":
        return ALL_COMPONENTS_MONITORING
    folder = K8S / target
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    generators = [g for g in kustomization.get("configMapGenerator", []) if g["name"] == "relayrl-monitoring"]
    if not generators:  # an overlay on overlays/monitoring (autoscaling): the setting is there
        (parent,) = [r for r in kustomization["resources"] if (folder / r / "kustomization.yaml").is_file()
                     and "overlays" in (folder / r).resolve().parts]
        return settings(str((folder / parent).resolve().relative_to(K8S)))
    (generator,) = generators
    return dict(literal.split("=", 1) for literal in generator["literals"])


@pytest.mark.parametrize("target", MONITORING_TARGETS)
def test_operator_objects_carry_the_release_label(rendered, target):
    release = settings(target)["release"]
    for kind in ("PodMonitor", "PrometheusRule"):
        (obj,) = by_kind(rendered[target], kind).values()
        assert obj["metadata"]["labels"]["release"] == release, kind


@pytest.mark.parametrize("target", MONITORING_TARGETS)
def test_metrics_ports_admit_the_monitoring_namespace(rendered, target):
    namespace = settings(target)["namespace"]
    policies = by_kind(rendered[target], "NetworkPolicy")
    assert set(policies) == {"relayrl-learner", "relayrl-actor"}
    for name, policy in policies.items():
        metrics_rules = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r.get("ports", [])} == {"metrics"}]
        assert len(metrics_rules) == 1, name
        assert metrics_rules[0]["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}], name


@pytest.mark.parametrize("target", MONITORING_TARGETS)
def test_the_settings_are_not_applied_to_the_cluster(rendered, target):
    assert "relayrl-monitoring" not in by_kind(rendered[target], "ConfigMap")


def test_the_docs_name_the_settings_that_exist():
    """docs/DEPLOY.md names the relayrl-monitoring settings as `key=value`: exactly the overlay's keys, so a
    runbook never points at a setting that does not exist."""
    doc = (REPO / "docs" / "DEPLOY.md").read_text()
    section = doc[doc.index("### kube-prometheus-stack"):doc.index("## Autoscaling the actors")]
    named = set(re.findall(r"`(\w+)=[^`]+`", section))
    assert named == set(settings("overlays/monitoring")), named
    assert "monitoring-namespace" not in doc
