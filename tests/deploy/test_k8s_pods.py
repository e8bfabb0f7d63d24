"""Kubernetes pods: configuration the services accept, grpc probes, hardening, the learner's single
replica and checkpoint volume, the actors' learner address, scrape annotations, the GPU overlay."""

from __future__ import annotations

import pytest

from .conftest import PER_ACTOR_VARS, VARS_BY_SERVICE, assert_variables_taken
from .kustomize import (
    FROM_POD,
    TARGETS,
    by_kind,
    container_env,
    learner_workload,
    pod_config,
    pods,
    secret_files,
    service_of,
)


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
def test_services_accept_their_configuration(rendered, target, tmp_path):
    """Names are not enough: the values must parse and validate, as the service itself would (TLS files
    must be ones a mounted Secret provides)."""
    objects = rendered[target]
    loaded = set()
    for _, template in pods(objects):
        for container in template["spec"]["containers"]:
            config = pod_config(objects, template, container, tmp_path)
            files = secret_files(template, container)  # stood in for by scratch files: not compared
            env = {k: v for k, v in container_env(objects, container).items() if v not in files}
            assert_variables_taken(service_of(container), config, env)
            loaded.add(service_of(container))
    assert loaded == {"learner", "actor"}, f"{target}: pods for {sorted(loaded)} only"


@pytest.mark.parametrize("target", TARGETS)
def test_grpc_probes_on_declared_ports(rendered, target, tmp_path):
    for name, template in pods(rendered[target]):
        for container in template["spec"]["containers"]:
            ports = {p["containerPort"] for p in container.get("ports", [])}
            for kind in ("livenessProbe", "readinessProbe"):
                probe = container.get(kind)
                assert probe and "grpc" in probe, f"{name}: {kind} must be a native grpc probe"
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if kind in container:
                    assert container[kind]["grpc"]["port"] in ports, f"{name}: {kind} port not declared"
    # Probes ask the port that serves health in plaintext: the actor's health port; the learner's gRPC port,
    # or its --health-port once TLS is on (kubelet gRPC probes cannot speak TLS).
    for _, template in pods(rendered[target]):
        for container in template["spec"]["containers"]:
            config = pod_config(rendered[target], template, container, tmp_path)
            if service_of(container) == "learner":
                assert config.tls_cert is None or config.health_port is not None, "TLS without a plaintext health port"
                expected = config.health_port if config.health_port is not None else config.port
            else:
                expected = config.health_port
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[kind]["grpc"]["port"] == expected, f"{service_of(container)}: {kind}"


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
def test_learner_pods_with_persistent_checkpoints(rendered, target):
    """One learner pod on one checkpoint volume, or (components/learner-ranks) one pod per rank, as many as
    the ranks the learner is told of, all on one volume that every node can mount."""
    objects = rendered[target]
    learner = learner_workload(objects)
    spec = learner["spec"]
    container = learner["spec"]["template"]["spec"]["containers"][0]
    env = container_env(objects, container)
    ranks = int(env.get("RELAYRL_LEARNER_NODES", "1"))
    assert env.get("RELAYRL_LEARNERS", "1") == "1", "one rank per pod: the Service's one port is the pod's rank"
    if learner["kind"] == "Job":  # components/learner-job: one pod at a time, a new one only once the old is gone
        assert spec["parallelism"] == spec["completions"] == ranks and spec["podReplacementPolicy"] == "Failed"
        assert (spec.get("completionMode") == "Indexed") == (ranks > 1), "a stable name per rank pod"
    else:
        assert learner["kind"] == "Deployment" and ranks == 1
        assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in learner["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mounts[env["RELAYRL_CHECKPOINT_DIR"]]]["persistentVolumeClaim"]["claimName"]
    access = by_kind(objects, "PersistentVolumeClaim")[claim]["spec"]["accessModes"]
    assert access == (["ReadWriteMany"] if ranks > 1 else ["ReadWriteOnce"]), access
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


@pytest.mark.parametrize("target", ["overlays/gpu", "overlays/gpu-ranks"])
def test_gpu_overlays_put_each_learner_pod_on_one_gpu_with_the_cuda_image(rendered, target):
    objects = rendered[target]
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
