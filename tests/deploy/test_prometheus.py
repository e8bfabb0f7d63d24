"""Prometheus: promtool validates the scrape configs; the jobs must scrape the ports the services serve."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig
from tests.conftest import wait_until
from tests.faults import free_port

from .conftest import DEPLOY, debian_prometheus, default, run, tool
from .services import Service

COMPOSE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
K8S_CONFIG = DEPLOY / "prometheus" / "prometheus-k8s.yml"


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_prometheus("promtool")


def promtool_check(promtool: str, path: Path) -> None:
    result = run([promtool, "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def jobs(path: Path) -> dict[str, dict]:
    return {job["job_name"]: job for job in yaml.safe_load(path.read_text())["scrape_configs"]}


def test_compose_config_is_valid(promtool):
    promtool_check(promtool, COMPOSE_CONFIG)


def test_k8s_config_is_valid(promtool, tmp_path):
    """Debian builds Prometheus without Kubernetes service discovery, so its promtool rejects
    kubernetes_sd_configs outright. Check everything else with promtool (relabel rules, RE2 regexes)
    by swapping the discovery block for an empty static one, and the discovery block by hand."""
    config = yaml.safe_load(K8S_CONFIG.read_text())
    for job in config["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert set(sd) <= {"role", "namespaces", "selectors", "api_server", "kubeconfig_file"}, sd
            assert sd["role"] in ("pod", "endpoints", "endpointslice", "service", "node", "ingress"), sd
            assert sd.get("namespaces", {}).get("names") == ["relayrl"], "scrape only RelayRL's namespace"
            job["static_configs"] = [{"targets": []}]
    stand_in = tmp_path / "prometheus-k8s.yml"
    stand_in.write_text(yaml.safe_dump(config))
    promtool_check(promtool, stand_in)


def compose_model() -> dict:
    result = run([tool("docker-compose"), "-f", str(DEPLOY / "compose" / "compose.yaml"), "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_jobs_scrape_the_services_metrics_ports():
    """job="learner" / job="actor" are what the dashboard selects on; the ports are the services' own."""
    model = compose_model()
    learner_env = model["services"]["learner"].get("environment") or {}
    actor_env = model["services"]["actor"].get("environment") or {}
    learner_port = int(learner_env.get("RELAYRL_METRICS_PORT", default(LearnerConfig, "metrics_port")))
    actor_port = int(actor_env.get("RELAYRL_METRICS_PORT", default(ActorConfig, "metrics_port")))
    scrape = jobs(COMPOSE_CONFIG)
    assert scrape["learner"]["static_configs"] == [{"targets": [f"learner:{learner_port}"]}]
    # DNS discovery on the service name: every `--scale actor=N` replica is scraped.
    (actor_sd,) = scrape["actor"]["dns_sd_configs"]
    assert actor_sd["names"] == ["actor"] and actor_sd["type"] == "A" and actor_sd["port"] == actor_port
    assert {"learner", "actor"} <= set(model["services"])


def test_k8s_job_label_comes_from_the_component_label():
    (job,) = [j for j in jobs(K8S_CONFIG).values() if "kubernetes_sd_configs" in j]
    to_job = [r for r in job["relabel_configs"] if r.get("target_label") == "job"]
    assert to_job and to_job[0]["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]


def test_k8s_config_drops_finished_pods(tmp_path, services):
    """A real Prometheus with the Kubernetes job's relabelling, fed the labels pod discovery gives (static
    targets stand in for discovery, which Debian's build lacks): a Running learner pod is a target, a
    Succeeded one (the learner Job of a finished run) is not, so RelayRLLearnerDown never fires for it."""
    config = yaml.safe_load(K8S_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    del job["kubernetes_sd_configs"]
    dead_port = free_port()  # nothing listens: the running pod's target is down, which is what it must show

    def pod(name: str, phase: str) -> dict:
        return {"targets": [f"127.0.0.1:{dead_port}"], "labels": {
            "__meta_kubernetes_namespace": "relayrl", "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_pod_phase": phase,
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
            "__meta_kubernetes_pod_annotation_prometheus_io_port": "9400",
            "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
            "__meta_kubernetes_pod_label_app_kubernetes_io_component": "learner"}}

    job["static_configs"] = [pod("learner-running", "Running"), pod("learner-finished", "Succeeded")]
    config.pop("rule_files", None)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    prometheus = Service("prometheus", [debian_prometheus("prometheus"), f"--config.file={path}",
                                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                        "--web.listen-address=127.0.0.1:0"], {}, tmp_path, cwd=tmp_path)
    services.append(prometheus)
    port = prometheus.port("prometheus")

    def targets() -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as response:
                data = json.loads(response.read())["data"]
        except OSError:
            return None
        return data if data["activeTargets"] or data["droppedTargets"] else None

    wait_until(lambda: targets() is not None, 30, "Prometheus to load its targets", 0.2)
    data = targets()
    active = [t["discoveredLabels"]["__meta_kubernetes_pod_name"] for t in data["activeTargets"]]
    dropped = [t["discoveredLabels"]["__meta_kubernetes_pod_name"] for t in data["droppedTargets"]]
    assert active == ["learner-running"] and dropped == ["learner-finished"], data
    assert data["activeTargets"][0]["labels"]["job"] == "learner"
