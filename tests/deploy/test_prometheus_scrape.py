"""A real Prometheus scrapes a running learner and actor; PromQL sees training, and every dashboard query runs.

Debian's `prometheus` binary (deploy/tools/install-prometheus.sh installs it when missing) is started with a
config generated from deploy/prometheus/prometheus.yml: the same jobs (job="learner", job="actor", the
names the dashboard selects on) and their settings, with Compose's service discovery swapped for static
loopback targets and a 1 s scrape interval. Learner and actor are `relayrl learner` / `relayrl actor`
processes bound to 127.0.0.1 on free ports.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import urllib.parse
import urllib.request

import pytest
import yaml

from tests.conftest import wait_until

from .conftest import DEPLOY, VENV_BIN, debian_prometheus
from .services import Service

COMPOSE_PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "relayrl.json"
SCRAPE = "1s"
# Grafana's $__rate_interval is at least four scrape intervals.
RATE_INTERVAL = "5s"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return debian_prometheus("prometheus")


def scrape_config(targets: dict[str, str]) -> dict:
    """deploy/prometheus/prometheus.yml with its learner and actor jobs kept as they are (name, path,
    relabelling...) except for discovery: static loopback targets instead of Compose's service names."""
    config = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(targets) <= set(jobs), f"the Compose Prometheus config has jobs {sorted(jobs)}"
    kept = []
    for name, target in targets.items():
        job = {k: v for k, v in jobs[name].items() if not k.endswith("_sd_configs") and k != "static_configs"}
        job["static_configs"] = [{"targets": [target]}]
        kept.append(job)
    config["global"].update(scrape_interval=SCRAPE, scrape_timeout=SCRAPE, evaluation_interval=SCRAPE)
    config["scrape_configs"] = kept
    return config


def api(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def try_api(port: int, path: str, **params) -> dict | None:
    try:
        return api(port, path, **params)
    except OSError:  # not listening yet (URLError is an OSError)
        return None


def query(port: int, expr: str) -> list[dict]:
    data = api(port, "query", query=expr)
    assert data["resultType"] == "vector", data
    return data["result"]


def value(port: int, expr: str) -> float:
    """The single sample of an instant query, NaN while there is none."""
    result = query(port, expr)
    return float(result[0]["value"][1]) if len(result) == 1 else math.nan


def targets_up(port: int) -> dict[str, str]:
    data = try_api(port, "targets") or {"activeTargets": []}
    return {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_prometheus_scrapes_learner_and_actor(tmp_path, prometheus_bin, services):
    relayrl = str(VENV_BIN / "relayrl")
    learner = Service("learner", [relayrl, "learner", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
                                  "--hidden-sizes", "16,16"], CLEAN_ENV, tmp_path, cwd=tmp_path)
    services.append(learner)
    grpc_port, learner_metrics = learner.port("grpc"), learner.port("metrics")
    actor = Service("actor", [relayrl, "actor", "--learner", f"127.0.0.1:{grpc_port}", "--num-envs", "8",
                              "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--health-port", "-1",
                              "--backoff-max", "0.5"], CLEAN_ENV, tmp_path, cwd=tmp_path)
    services.append(actor)
    actor_metrics = actor.port("metrics")
    config = tmp_path / "prometheus.yml"
    # The alerting rules beside the config, as Compose mounts them (rule_files: rules/*.yml), evaluated live.
    shutil.copytree(DEPLOY / "prometheus" / "rules", tmp_path / "rules")
    config.write_text(yaml.safe_dump(scrape_config({"learner": f"127.0.0.1:{learner_metrics}",
                                                    "actor": f"127.0.0.1:{actor_metrics}"})))
    prometheus = Service("prometheus", [prometheus_bin, f"--config.file={config}",
                                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                        "--web.listen-address=127.0.0.1:0"],
                         CLEAN_ENV, tmp_path, cwd=tmp_path)
    services.append(prometheus)
    prom_port = prometheus.port("prometheus")

    def alive() -> bool:
        for service in services:
            if not service.running():
                pytest.fail(f"{service.name} exited with {service.popen.returncode}\n{service.tail()}")
        return True

    wait_until(lambda: alive() and targets_up(prom_port) == {"learner": "up", "actor": "up"}, 60,
               "Prometheus to scrape both targets", 0.5)
    # Training as Prometheus sees it: env steps per second on both sides, and a learning curve.
    for job in ("learner", "actor"):
        rate = f'sum(rate(relayrl_env_steps_total{{job="{job}"}}[{RATE_INTERVAL}]))'
        wait_until(lambda rate=rate: alive() and value(prom_port, rate) > 0, 60, f"{rate} > 0", 0.5)
    latest = 'relayrl_mean_return_100{job="learner"}'
    wait_until(lambda: alive() and value(prom_port, latest) > 0, 60, f"{latest} > 0", 0.5)
    assert 5 <= value(prom_port, latest) <= 500, "a CartPole return"
    assert value(prom_port, 'relayrl_actors_connected{job="learner"}') == 1
    assert value(prom_port, 'sum(relayrl_learner_connected{job="actor"})') == 1

    # Every dashboard query is valid PromQL with data behind it (a "> 0" filter may rightly be empty).
    empty = []
    for title, expr in dashboard_queries():
        # $namespace as the dashboard's All value: Compose's series (as here) carry no namespace label.
        result = query(prom_port, expr.replace("$__rate_interval", RATE_INTERVAL).replace("$namespace", ".*"))
        if not result and not expr.rstrip().endswith("> 0"):
            empty.append(f"{title}: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

    # The alerting rules load and evaluate against the live series without errors.
    def rules_evaluated() -> bool:
        groups = api(prom_port, "rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return bool(rules) and all(r.get("lastEvaluation", "").startswith("20") for r in rules)

    wait_until(lambda: alive() and rules_evaluated(), 60, "every alerting rule evaluated", 0.5)
    (group,) = api(prom_port, "rules")["groups"]
    bad = [f"{r['name']}: {r.get('lastError')}" for r in group["rules"] if r["health"] != "ok"]
    assert group["name"] == "relayrl" and not bad, bad
