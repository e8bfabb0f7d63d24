"""Kubernetes: render every kustomization with the real kustomize, validate each object against the API
schema, then check what schemas cannot: labels, port names, references, probes, hardening, config names."""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .conftest import DEPLOY, PER_ACTOR_VARS, VARS_BY_SERVICE, load_config, run, tool

K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"
TARGETS = ["base", *sorted(f"overlays/{p.name}" for p in (K8S / "overlays").iterdir() if p.is_dir()), "all-components"]
# Custom resources: kubernetes-validate bundles only the core API's schemas. Their shape is checked in
# test_podmonitor_selects_both_services instead.
CRD_GROUPS = ("monitoring.coreos.com/",)
FROM_POD = "set-per-pod"  # stands in for a value the downward API fills in


def all_components_overlay(tmp: Path) -> Path:
    """A throwaway overlay with the base and every component, so each component renders at least once."""
    components = sorted(p for p in (K8S / "components").iterdir() if p.is_dir())
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "namespace: relayrl",
             "resources:", f"  - {os.path.relpath(K8S / 'base', tmp)}", "components:"]
    lines += [f"  - {os.path.relpath(c, tmp)}" for c in components]
    (tmp / "kustomization.yaml").write_text("\n".join(lines) + "\n")
    return tmp


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    out = {}
    for target in TARGETS:
        path = all_components_overlay(tmp_path_factory.mktemp("all")) if target == "all-components" else K8S / target
        result = run([tool("kubectl"), "kustomize", str(path)])
        assert result.returncode == 0, f"{target}: {result.stderr}"
        out[target] = [o for o in yaml.safe_load_all(result.stdout) if o]
    return out


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


@pytest.mark.parametrize("target", TARGETS)
def test_objects_match_the_api_schema(rendered, target):
    errors = []
    for obj in rendered[target]:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("target", TARGETS)
def test_everything_in_the_relayrl_namespace(rendered, target):
    for obj in rendered[target]:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "relayrl", f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("target", TARGETS)
def test_selectors_match_pod_labels(rendered, target):
    for workload in workloads(rendered[target]):
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"{workload['metadata']['name']}: {selector} vs {labels}"


@pytest.mark.parametrize("target", TARGETS)
def test_services_target_named_container_ports(rendered, target):
    objects = rendered[target]
    for name, service in by_kind(objects, "Service").items():
        selector = service["spec"]["selector"]
        selected = [t for _, t in pods(objects) if selector.items() <= t["metadata"]["labels"].items()]
        assert selected, f"Service {name} selects no pods"
        for port in service["spec"]["ports"]:
            for template in selected:
                declared = [p for c in template["spec"]["containers"] for p in c.get("ports", [])]
                target_port = port["targetPort"]
                assert isinstance(target_port, str), f"{name}: name the target port, not {target_port}"
                match = [p for p in declared if p.get("name") == target_port]
                assert match, f"Service {name}: no container port named {target_port}"
                assert port["name"] == target_port and port["port"] == match[0]["containerPort"]


@pytest.mark.parametrize("target", TARGETS)
def test_references_resolve(rendered, target):
    objects = rendered[target]
    configmaps, secrets = by_kind(objects, "ConfigMap"), by_kind(objects, "Secret")
    claims, accounts = by_kind(objects, "PersistentVolumeClaim"), by_kind(objects, "ServiceAccount")
    for name, template in pods(objects):
        spec = template["spec"]
        assert spec.get("serviceAccountName") in accounts, f"{name}: service account"
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, f"{name}: {volume}"
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, f"{name}: {volume}"
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, f"{name}: {volume}"
        volume_names = {v["name"] for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volume_names, name
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, f"{name}: {source}"
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, f"{name}: {source}"
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in configmaps[ref["name"]]["data"], f"{name}: {var}"
    for name, hpa in by_kind(objects, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["scaleTargetRef"]["name"] in by_kind(objects, "Deployment"), name


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


@pytest.mark.parametrize("target", TARGETS)
def test_relayrl_variables_are_real_config_fields(rendered, target):
    objects = rendered[target]
    seen = set()
    for name, template in pods(objects):
        for container in template["spec"]["containers"]:
            service = service_of(container)
            seen.add(service)
            env = container_env(objects, container)
            unknown = {k for k in env if k.startswith("RELAYRL_")} - set(VARS_BY_SERVICE[service])
            assert not unknown, f"{name}: {service} does not read {sorted(unknown)}"
            if service == "actor":
                shared = {k for k in PER_ACTOR_VARS if k in env and env[k] != FROM_POD}
                assert not shared, f"{name}: every replica would share {sorted(shared)}"
    assert seen == {"learner", "actor"}


@pytest.mark.parametrize("target", TARGETS)
def test_services_accept_their_configuration(rendered, target):
    """Names are not enough: the values must parse and validate, as the service itself would."""
    objects = rendered[target]
    for _, template in pods(objects):
        for container in template["spec"]["containers"]:
            load_config(service_of(container), container_env(objects, container))


@pytest.mark.parametrize("target", TARGETS)
def test_grpc_probes_on_declared_ports(rendered, target):
    for name, template in pods(rendered[target]):
        for container in template["spec"]["containers"]:
            ports = {p["containerPort"] for p in container.get("ports", [])}
            for kind in ("livenessProbe", "readinessProbe"):
                probe = container.get(kind)
                assert probe and "grpc" in probe, f"{name}: {kind} must be a native grpc probe"
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if kind in container:
                    assert container[kind]["grpc"]["port"] in ports, f"{name}: {kind} port not declared"
    expected = {"learner": 50051, "actor": 50052}
    for _, template in pods(rendered[target]):
        for container in template["spec"]["containers"]:
            assert container["livenessProbe"]["grpc"]["port"] == expected[service_of(container)]


@pytest.mark.parametrize("target", TARGETS)
def test_pods_are_hardened(rendered, target):
    for name, template in pods(rendered[target]):
        spec = template["spec"]
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is not True, name
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in spec["containers"]:
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("readOnlyRootFilesystem") is True, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes
                       for m in container.get("volumeMounts", [])), f"{name}: /tmp must be a writable emptyDir"
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{name}: {section}"


@pytest.mark.parametrize("target", TARGETS)
def test_learner_is_single_with_persistent_checkpoints(rendered, target):
    objects = rendered[target]
    learner = next(o for o in by_kind(objects, "Deployment").values()
                   if service_of(o["spec"]["template"]["spec"]["containers"][0]) == "learner")
    assert learner["spec"]["replicas"] == 1 and learner["spec"]["strategy"]["type"] == "Recreate"
    container = learner["spec"]["template"]["spec"]["containers"][0]
    env = container_env(objects, container)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in learner["spec"]["template"]["spec"]["volumes"]}
    assert "persistentVolumeClaim" in volumes[mounts[env["RELAYRL_CHECKPOINT_DIR"]]]
    assert env["RELAYRL_RESUME"] == "true"


@pytest.mark.parametrize("target", TARGETS)
def test_actors_address_the_learner_service(rendered, target):
    objects = rendered[target]
    services = by_kind(objects, "Service")
    for _, template in pods(objects):
        container = template["spec"]["containers"][0]
        if service_of(container) != "actor":
            continue
        host, _, port = container_env(objects, container)["RELAYRL_LEARNER"].rpartition(":")
        assert host in services, f"{host} is not a Service"
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"] if p["name"] == "grpc"}


@pytest.mark.parametrize("target", TARGETS)
def test_scrape_annotations_name_the_metrics_port(rendered, target):
    for name, template in pods(rendered[target]):
        annotations = template["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        metrics = [p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]
                   if p["name"] == "metrics"]
        assert metrics == [int(annotations["prometheus.io/port"])], name


@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_admits_only_actors_to_learner_grpc(rendered, target):
    objects = rendered[target]
    templates = {service_of(t["spec"]["containers"][0]): t for _, t in pods(objects)}
    learner_labels = templates["learner"]["metadata"]["labels"]
    actor_labels = templates["actor"]["metadata"]["labels"]
    policies = [p for p in by_kind(objects, "NetworkPolicy").values()
                if p["spec"]["podSelector"]["matchLabels"].items() <= learner_labels.items()]
    assert len(policies) == 1
    declared = {p["name"] for c in templates["learner"]["spec"]["containers"] for p in c["ports"]}
    grpc_sources = []
    for rule in policies[0]["spec"]["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        assert ports <= declared, f"policy names ports the learner does not declare: {ports - declared}"
        if "grpc" in ports:
            grpc_sources += rule["from"]
    assert grpc_sources, "nothing may reach the learner's gRPC port"
    for source in grpc_sources:
        assert set(source) == {"podSelector"}, f"only pods in this namespace: {source}"
        assert source["podSelector"]["matchLabels"].items() <= actor_labels.items()
        assert not source["podSelector"]["matchLabels"].items() <= learner_labels.items()


def test_gpu_overlay_puts_the_learner_on_one_gpu_with_the_cuda_image(rendered):
    objects = rendered["overlays/gpu"]
    for _, template in pods(objects):
        container = template["spec"]["containers"][0]
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        if service_of(container) == "learner":
            assert gpus == 1 and container["image"].split(":")[0].endswith("relayrl-cuda")
            assert container_env(objects, container)["RELAYRL_DEVICE"] == "cuda"
        else:
            assert gpus is None and not container["image"].split(":")[0].endswith("cuda")


def test_cpu_targets_request_no_gpu(rendered):
    for target in ("base", "overlays/default"):
        for _, template in pods(rendered[target]):
            for container in template["spec"]["containers"]:
                assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
                assert container_env(rendered[target], container).get("RELAYRL_DEVICE", "cpu") != "cuda"


def test_podmonitor_selects_both_services(rendered):
    """The custom resource kubernetes-validate cannot check: its selector, port and job label."""
    objects = rendered["overlays/monitoring"]
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert set(spec) <= {"jobLabel", "selector", "podMetricsEndpoints", "namespaceSelector"}
    for service, template in {service_of(t["spec"]["containers"][0]): t for _, t in pods(objects)}.items():
        labels = template["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), service
        # The dashboard selects job="learner" / job="actor": the job label must come out as that.
        assert labels[spec["jobLabel"]] == service
        ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
        for endpoint in spec["podMetricsEndpoints"]:
            assert endpoint["port"] in ports and endpoint["path"] == "/metrics"


def test_dashboard_configmap_carries_the_dashboard(rendered):
    configmaps = by_kind(rendered["overlays/monitoring"], "ConfigMap")
    dashboard = configmaps["relayrl-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["relayrl.json"] == (DEPLOY / "grafana" / "dashboards" / "relayrl.json").read_text()
