"""Autoscaling the actors on what the learner needs (components/actor-autoscaling, overlays/autoscaling):
KEDA's Prometheus trigger on the learner's starvation gauge, a query promtool accepts that names a metric the
learner exports in this deployment's namespace, the HPA's Value semantics, and no fixed replica count
wherever an autoscaler owns the Deployment (an apply would reset what it chose)."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import debian_prometheus, run
from .kustomize import TARGETS, by_kind

SCALED = [t for t in TARGETS if t in ("overlays/autoscaling", "all-components")]


def test_autoscaled_targets_exist():
    assert SCALED == ["overlays/autoscaling", "all-components"]


def scaled_object(objects) -> dict:
    (scaler,) = by_kind(objects, "ScaledObject").values()
    return scaler


@pytest.mark.parametrize("target", TARGETS)
def test_no_fixed_replicas_where_an_autoscaler_owns_the_count(rendered, target):
    objects = rendered[target]
    owned = {s["spec"]["scaleTargetRef"]["name"] for kind in ("ScaledObject", "HorizontalPodAutoscaler")
             for s in by_kind(objects, kind).values()}
    assert ("relayrl-actor" in owned) == (target in SCALED)
    for name, deployment in by_kind(objects, "Deployment").items():
        if name in owned:
            assert "replicas" not in deployment["spec"], f"{target}: {name}'s replicas fight the autoscaler"
        else:
            assert deployment["spec"].get("replicas", 1) >= 1


@pytest.mark.parametrize("target", SCALED)
def test_scales_on_the_learners_starvation(rendered, target, exported):
    objects = rendered[target]
    scaler = scaled_object(objects)
    spec = scaler["spec"]
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    # Value: desired = ceil(current x ratio / threshold), more actors while the ratio is above the threshold.
    # (AverageValue would divide the learner's one ratio among the actors instead.)
    assert trigger["metricType"] == "Value"
    meta = trigger["metadata"]
    assert 0 < float(meta["threshold"]) < 1 and meta["ignoreNullValues"] == "true"
    assert re.fullmatch(r"https?://[\w.-]+(:\d+)?", meta["serverAddress"]), meta["serverAddress"]
    names = re.findall(r"\b(relayrl_\w+)\{([^}]*)\}", meta["query"])
    assert names and {n for n, _ in names} == {"relayrl_learner_starvation_ratio"}
    assert all(n in exported["learner"] for n, _ in names)
    for _, matchers in names:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', matchers))
        assert labels == {"job": "learner", "namespace": scaler["metadata"]["namespace"]}, matchers


def test_the_query_is_valid_promql(rendered, tmp_path):
    """promtool parses the query (as a recording rule's expression)."""
    query = scaled_object(rendered["overlays/autoscaling"])["spec"]["triggers"][0]["metadata"]["query"]
    rules = tmp_path / "query.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "q", "expr": query}]}]}))
    result = run([debian_prometheus("promtool"), "check", "rules", str(rules)])
    assert result.returncode == 0, result.stdout + result.stderr
