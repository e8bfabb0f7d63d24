"""Autoscaling the actors on what the learner needs (components/actor-autoscaling, overlays/autoscaling):
KEDA's Prometheus trigger on the learner's starvation gauge, a query promtool accepts that names a metric the
learner exports in this deployment's namespace, the HPA's Value semantics, and no fixed replica count
wherever an autoscaler owns the Deployment (an apply would reset what it chose)."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import debian_prometheus, run
from .kustomize import K8S, TARGETS, by_kind, render_copy
from .test_k8s_monitoring import settings as monitoring_settings

SCALED = [t for t in TARGETS if t in ("overlays/autoscaling", "overlays/production", "all-components")]


def test_autoscaled_targets_exist():
    assert SCALED == ["overlays/autoscaling", "overlays/production", "all-components"]


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
    # Zero actors without a learner (a finished run, between runs): nothing left to restart or alert on.
    assert spec["minReplicaCount"] == 0 < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    # Value: desired = ceil(current x ratio / threshold), more actors while the ratio is above the threshold.
    # (AverageValue would divide the learner's one ratio among the actors instead.)
    assert trigger["metricType"] == "Value"
    meta = trigger["metadata"]
    assert 0 < float(meta["threshold"]) < 1 and meta["ignoreNullValues"] == "true"
    # Active (one actor at least) while a learner exists, however saturated: the query's floor is above it.
    floor = float(re.search(r"clamp_min\(.*, ([\d.]+)\)$", meta["query"]).group(1))
    assert 0 < float(meta["activationThreshold"]) < floor
    assert meta["serverAddress"] == monitoring_settings(target)["prometheus"], "one place: relayrl-monitoring"
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


def query_cases(query: str, namespace: str) -> dict[str, dict]:
    """promtool unit tests of the autoscaler's query: input series and what KEDA must get."""
    def series(labels: str, values: str) -> dict:
        return {"series": f"relayrl_learner_starvation_ratio{{{labels}}}", "values": values}

    ours = f'job="learner", namespace="{namespace}"'
    replaced = {
        "interval": "1m",
        "input_series": [
            # This run's learner replaced at 5m (a ConfigMap edit under Recreate, a drain, a Job retry): the old
            # pod's series ends, the new pod's starts starving; the old one stays in the 2m window a while.
            series(f'{ours}, pod="learner-old"', "0.2x5 stale"),
            series(f'{ours}, pod="learner-new"', "_x5 1x5 0x10"),
            # Another run's learner, in another namespace, starving: not ours.
            series('job="learner", namespace="other", pod="learner"', "1x20"),
        ],
        "promql_expr_test": [
            # Both pods in the window: one element, the starving one's.
            {"expr": query, "eval_time": "6m", "exp_samples": [{"labels": "{}", "value": 1}]},
            # The new learner saturated: the floor, so that it keeps an actor.
            {"expr": query, "eval_time": "20m", "exp_samples": [{"labels": "{}", "value": 0.01}]},
        ],
    }
    # A finished run: its learner's series ended at 5m; minutes later nothing is left to scale on.
    gone = {
        "interval": "1m",
        "input_series": [series(f'{ours}, pod="learner"', "0.5x5 stale")],
        "promql_expr_test": [{"expr": query, "eval_time": "12m", "exp_samples": []}],
    }
    return {"replaced-learner": replaced, "no-learner": gone}


@pytest.mark.parametrize("case", ["replaced-learner", "no-learner"])
def test_the_query_gives_keda_one_element_or_none(rendered, case, tmp_path):
    """KEDA's Prometheus scaler fails on a result of more than one element: the query must aggregate the
    learner's pods (an unaggregated avg_over_time gives two series after a replacement), stay inside this
    run's namespace, and give nothing (ignoreNullValues: 0, inactive) once the learner is gone."""
    scaler = scaled_object(rendered["overlays/autoscaling"])
    query = scaler["spec"]["triggers"][0]["metadata"]["query"]
    test = tmp_path / "query_test.yml"
    test.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m",
                                    "tests": [query_cases(query, scaler["metadata"]["namespace"])[case]]}))
    result = run([debian_prometheus("promtool"), "test", "rules", str(test)])
    assert result.returncode == 0, result.stdout + result.stderr


def scaling_overlays() -> list[str]:
    """Every overlay whose render holds the ScaledObject (the shipped ones, read from their files)."""
    return sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml")
                  if "actor-autoscaling" in p.read_text() or "../autoscaling" in p.read_text())


@pytest.mark.parametrize("overlay", scaling_overlays())
def test_a_copy_under_another_namespace_scales_on_its_own_learner(overlay, tmp_path):
    """Rendered under another namespace (the overlay's `namespace:` edited, as docs/DEPLOY.md says to run a
    second run beside the first), the autoscaler reads that namespace's learner, not the first run's."""
    objects = render_copy(tmp_path, f"overlays/{overlay}", namespace="second-run")
    scaler = scaled_object(objects)
    assert scaler["metadata"]["namespace"] == "second-run"
    labels = dict(re.findall(r'(\w+)="([^"]*)"', scaler["spec"]["triggers"][0]["metadata"]["query"]))
    assert labels == {"job": "learner", "namespace": "second-run"}
