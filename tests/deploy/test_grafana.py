"""Grafana: the dashboard is valid, wired to the provisioned datasource, and every PromQL expression
names metrics (and labels) that the services really export, on the job that exports them."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from .conftest import DEPLOY

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "relayrl.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "relayrl.yaml"
# Series Prometheus makes itself, and the labels it adds to every target's series.
PROMETHEUS_SERIES = {"up": set()}
# namespace: added on Kubernetes (the Prometheus Operator's PodMonitor, prometheus-k8s.yml's relabelling).
TARGET_LABELS = {"job", "instance", "namespace"}
# Panels take their datasource from this variable, so any Prometheus datasource works (kube-prometheus-stack's
# uid is "prometheus", Compose's provisioned one "relayrl-prometheus").
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}
# The panels the dashboard must keep (one sample name per topic it has to show).
REQUIRED = {"relayrl_mean_return_100", "relayrl_episode_return_bucket", "relayrl_env_steps_total",
            "relayrl_updates_total", "relayrl_policy_lag_bucket", "relayrl_loss", "relayrl_grad_norm",
            "relayrl_actors_connected", "relayrl_rejected_total", "relayrl_dropped_stale_total",
            "relayrl_broadcast_seconds_bucket", "relayrl_checkpoint_seconds_bucket", "relayrl_learner_starvation_ratio"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard):
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def selectors(expr: str) -> tuple[list[tuple[str, dict[str, str]]], set[str]]:
    """The (metric name, label matchers) of every selector in a PromQL expression, and the grouping labels."""
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations, e.g. [$__rate_interval]
    grouping = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
    group_labels = {label.strip() for match in grouping.findall(expr) for label in match.split(",") if label.strip()}
    expr = grouping.sub(" ", expr)
    found = []
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?", expr):
        name, braces, call = match.groups()
        if call or name in KEYWORDS:
            continue
        matchers = dict(re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', braces or ""))
        found.append((name, matchers))
    return found, group_labels


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "relayrl-overview"
    assert dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert dashboard.get("editable") is False


def variables(dashboard) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_panels_take_the_datasource_from_a_variable(dashboard):
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    variable = variables(dashboard)["datasource"]
    # The variable lists every datasource of the provisioned one's type; provisioned as default, it is chosen.
    assert variable["type"] == "datasource" and variable["query"] == datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    for panel in all_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no queries"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    assert "relayrl-prometheus" not in DASHBOARD.read_text(), "a hard-coded datasource uid"


def test_every_query_is_scoped_to_one_run(dashboard, exported):
    """Two runs (namespaces) in one Prometheus are not mixed: every selector matches namespace=~"$namespace",
    whose values come from the learner's build info; All (.*) also matches Compose's series without it."""
    variable = variables(dashboard)["namespace"]
    assert variable["datasource"] == DATASOURCE and variable["includeAll"] and variable["allValue"] == ".*"
    found, _ = selectors(variable["query"]["query"].replace("label_values(", "").rsplit(",", 1)[0])
    ((name, matchers),) = found
    assert name in exported[matchers["job"]]
    for panel, target in targets(dashboard):
        for name, matchers in selectors(target["expr"])[0]:
            assert matchers.get("namespace") == "$namespace", f"{panel['title']!r}: {name} is not scoped to the run"


def test_provider_path_is_where_compose_mounts_the_dashboards():
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_every_expression_names_exported_metrics_and_labels(dashboard, exported):
    union = {name: exported["learner"].get(name, set()) | exported["actor"].get(name, set())
             for name in exported["learner"].keys() | exported["actor"].keys()}
    for panel, target in targets(dashboard):
        where = f"{panel['title']!r}: {target['expr']}"
        found, group_labels = selectors(target["expr"])
        assert found, f"{where}: no metric"
        available = set(TARGET_LABELS)
        for name, matchers in found:
            job = matchers.get("job")
            known = PROMETHEUS_SERIES | (exported[job] if job else union)
            assert name in known, f"{where}: {name} is not exported{' by the ' + job if job else ''}"
            assert job in (None, "learner", "actor"), f"{where}: unknown job {job}"
            available |= known[name]
            unknown = set(matchers) - TARGET_LABELS - known[name]
            assert not unknown, f"{where}: {name} has no label {unknown}"
        assert group_labels <= available, f"{where}: grouping by {group_labels - available}"
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend <= available - {"le"} | group_labels, f"{where}: legend uses {legend - available}"


def test_dashboard_covers_the_required_topics(dashboard):
    used = {name for _, target in targets(dashboard) for name, _ in selectors(target["expr"])[0]}
    assert REQUIRED <= used, f"missing panels for {sorted(REQUIRED - used)}"


def test_selector_parser_finds_names_matchers_and_grouping():
    """The checks above are only as good as this parser."""
    expr = ('histogram_quantile(0.9, sum by (le) (rate(relayrl_policy_lag_bucket{job="learner"}[$__rate_interval])))'
            ' / on (job) group_left count(up{job=~"actor"} == 1)')
    found, grouping = selectors(expr)
    assert found == [("relayrl_policy_lag_bucket", {"job": "learner"}), ("up", {"job": "actor"})]
    assert grouping == {"le", "job"}
