"""Kubernetes objects: every kustomization renders with the real kustomize, every object matches the API
schema, and what schemas cannot see holds: labels vs selectors, named ports, references, network policy,
the monitoring add-ons."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from .conftest import DEPLOY, REPO
from .kustomize import CERTIFICATE_KEYS, TARGETS, by_kind, container_env, pods, service_of, workloads


def documented_minimum() -> str:
    """The minimum Kubernetes version docs/DEPLOY.md's Requirements table states: what the objects are
    validated against, so that nothing newer sneaks in unannounced."""
    (version,) = re.findall(r"(?m)^\| Kubernetes \| (\d+\.\d+) \|", (REPO / "docs" / "DEPLOY.md").read_text())
    return f"{version}.0"


K8S_VERSION = documented_minimum()
# Custom resources: kubernetes-validate bundles only the core API's schemas. Their shape is checked in
# test_podmonitor_selects_both_services instead.
CRD_GROUPS = ("monitoring.coreos.com/", "cert-manager.io/", "keda.sh/")
# Secrets an operator creates by hand (docs/DEPLOY.md says how): never in the repository.
EXTERNAL_SECRETS = {"relayrl-auth": {"token"}}


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
        if workload["kind"] == "Job":
            continue  # the API server generates a Job's selector
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
    configmaps = by_kind(objects, "ConfigMap")
    # Secrets: rendered ones, those cert-manager's Certificates make, and the hand-made ones.
    secrets = {name: set(s.get("data", {})) | set(s.get("stringData", {}))
               for name, s in by_kind(objects, "Secret").items()}
    secrets |= {c["spec"]["secretName"]: set(CERTIFICATE_KEYS) for c in by_kind(objects, "Certificate").values()}
    secrets |= EXTERNAL_SECRETS
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
                for item in volume["secret"].get("items", []):
                    assert item["key"] in secrets[volume["secret"]["secretName"]], f"{name}: {item}"
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
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], ()), f"{name}: {var}"
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for name, scaler in by_kind(objects, kind).items():
            assert scaler["spec"]["scaleTargetRef"]["name"] in by_kind(objects, "Deployment"), name



@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_admits_only_actors_to_learner_grpc(rendered, target):
    """Actors, and only they, reach the learner's gRPC port; with several learner ranks
    (components/learner-ranks) the ranks also reach each other, on any port (gloo's are ephemeral)."""
    objects = rendered[target]
    templates = {service_of(t["spec"]["containers"][0]): t for _, t in pods(objects)}
    learner_labels = templates["learner"]["metadata"]["labels"]
    actor_labels = templates["actor"]["metadata"]["labels"]
    ranks = int(container_env(objects, templates["learner"]["spec"]["containers"][0]).get("RELAYRL_LEARNER_NODES", "1"))
    policies = [p for p in by_kind(objects, "NetworkPolicy").values()
                if p["spec"]["podSelector"]["matchLabels"].items() <= learner_labels.items()]
    assert len(policies) == 1
    declared = {p["name"] for c in templates["learner"]["spec"]["containers"] for p in c["ports"]}
    grpc_sources, every_port_sources = [], []
    for rule in policies[0]["spec"]["ingress"]:
        if "ports" not in rule:  # every port
            every_port_sources += rule["from"]
            continue
        ports = {p["port"] for p in rule["ports"]}
        assert ports <= declared, f"policy names ports the learner does not declare: {ports - declared}"
        if "grpc" in ports:
            grpc_sources += rule["from"]
    assert grpc_sources, "nothing may reach the learner's gRPC port"
    for source in grpc_sources:
        assert set(source) == {"podSelector"}, f"only pods in this namespace: {source}"
        assert source["podSelector"]["matchLabels"].items() <= actor_labels.items()
        assert not source["podSelector"]["matchLabels"].items() <= learner_labels.items()
    if ranks == 1:
        assert not every_port_sources, every_port_sources
    else:
        assert every_port_sources == [{"podSelector": policies[0]["spec"]["podSelector"]}], every_port_sources


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
            # finished pods (a completed learner Job) must stay no targets: no TargetDown for a finished run
            assert endpoint.get("filterRunning", True) is True


def test_dashboard_configmap_carries_the_dashboard(rendered):
    configmaps = by_kind(rendered["overlays/monitoring"], "ConfigMap")
    dashboard = configmaps["relayrl-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["relayrl.json"] == (DEPLOY / "grafana" / "dashboards" / "relayrl.json").read_text()


DNS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
       "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}


@pytest.mark.parametrize("target", TARGETS)
def test_egress_is_dns_and_for_actors_the_learner(rendered, target):
    """Actors run environment code: their egress is DNS and the learner's gRPC port, nothing else (no node
    metadata service, no other pod); the learner's is DNS alone, and with several ranks the other ranks."""
    objects = rendered[target]
    templates = {service_of(t["spec"]["containers"][0]): t for _, t in pods(objects)}
    for service, template in templates.items():
        labels = template["metadata"]["labels"]
        (policy,) = [p for p in by_kind(objects, "NetworkPolicy").values()
                     if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert "Egress" in policy["spec"]["policyTypes"], service
        rules = policy["spec"]["egress"]
        dns = [r for r in rules if r["to"] == [DNS]]
        assert len(dns) == 1 and {(p["port"], p["protocol"]) for p in dns[0]["ports"]} == {(53, "UDP"), (53, "TCP")}
        others = [r for r in rules if r not in dns]
        if service == "learner":
            ranks = int(container_env(objects, template["spec"]["containers"][0]).get("RELAYRL_LEARNER_NODES", "1"))
            assert others == ([] if ranks == 1 else [{"to": [{"podSelector": policy["spec"]["podSelector"]}]}]), others
        else:
            (to_learner,) = others
            (peer,) = to_learner["to"]
            assert set(peer) == {"podSelector"}, "only pods of this namespace"
            assert peer["podSelector"]["matchLabels"].items() <= templates["learner"]["metadata"]["labels"].items()
            assert to_learner["ports"] == [{"port": "grpc"}]


@pytest.mark.parametrize("target", TARGETS)
def test_every_empty_dir_has_a_size_limit(rendered, target):
    """An emptyDir without sizeLimit can fill the node's disk (a runaway env writing to /tmp)."""
    for name, template in pods(rendered[target]):
        for volume in template["spec"].get("volumes", []):
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{name}: {volume['name']}"


def test_the_documented_minimum_is_needed(rendered):
    """The learner Job's podReplacementPolicy and podFailurePolicy as written are not the API of 1.27 (the
    first is unknown there, the second's schema differs): an older stated minimum would be wrong."""
    job = next(o for o in rendered["overlays/job"] if o["kind"] == "Job")
    assert job["spec"]["podReplacementPolicy"] == "Failed"
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError, match="podReplacementPolicy|podFailurePolicy"):
        kubernetes_validate.validate(job, "1.27.0", strict=True)
