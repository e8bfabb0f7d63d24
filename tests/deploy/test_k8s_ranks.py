"""Several learner ranks on Kubernetes (components/learner-ranks, overlays/ranks, overlays/gpu-ranks): one pod
per rank in an Indexed Job, meeting at pod 0 through a headless Service, on the pod template of the single
learner. What torchrun needs from the cluster is checked on the rendered objects: the rendezvous address
names pod 0 of this Job in this Service's subdomain on the port the container declares, the Service publishes
pods before they are ready (a rank is ready only after all have met), and the startup probe waits as long
as torchrun's rendezvous does. And the rank pods run as processes: two learners and two actors with the
environment overlays/ranks renders, rewritten only where the cluster stands behind a value (pod 0's DNS name
becomes loopback, ports, the volume and the token), form one group and finish the run together."""

from __future__ import annotations

import copy
import re
import subprocess

import pytest

from tests.faults import free_port

from .kustomize import RANKS, TARGETS, by_kind, container_env, learner_workload
from .test_k8s_run_lifecycle import Cluster, rendered_env

RANKS_TARGETS = ["overlays/gpu-ranks", "overlays/ranks", "all-components"]
RENDEZVOUS_WAIT = 600  # seconds torchrun's c10d rendezvous waits for every rank (its join_timeout default)


def learner_env(objects) -> dict[str, str]:
    return container_env(objects, learner_workload(objects)["spec"]["template"]["spec"]["containers"][0])


def test_the_ranks_targets_are_those_with_several_ranks(rendered):
    assert sorted(t for t in TARGETS if int(learner_env(rendered[t]).get("RELAYRL_LEARNER_NODES", "1")) > 1) \
        == sorted(RANKS_TARGETS)
    # The overlay's count reaches the Job (one fact, copied by a replacement), also when it is not the default.
    assert learner_workload(rendered["all-components"])["spec"]["completions"] == RANKS != 2
    assert learner_workload(rendered["overlays/ranks"])["spec"]["completions"] == 2


@pytest.mark.parametrize("target", RANKS_TARGETS)
def test_ranks_meet_at_pod_zero_through_the_headless_service(rendered, target):
    objects = rendered[target]
    job = learner_workload(objects)
    pod = job["spec"]["template"]
    host, _, port = learner_env(objects)["RELAYRL_RENDEZVOUS"].rpartition(":")
    subdomain = pod["spec"]["subdomain"]
    # An Indexed Job's pod INDEX has the hostname JOB-INDEX; with a subdomain, DNS names it JOB-INDEX.SUBDOMAIN.
    assert host == f"{job['metadata']['name']}-0.{subdomain}"
    service = by_kind(objects, "Service")[subdomain]["spec"]
    assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    declared = {p["name"]: p["containerPort"] for p in container["ports"]}
    (rendezvous,) = [p for p in service["ports"] if p["port"] == int(port)]
    assert declared[rendezvous["targetPort"]] == int(port), "torchrun on pod 0 listens on the address's port"
    probe = container["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= RENDEZVOUS_WAIT


@pytest.mark.parametrize("target", RANKS_TARGETS)
def test_actors_reach_any_rank_through_the_learner_service(rendered, target):
    """The actors' address is the learner Service, which selects every rank pod: each actor's connection goes to
    one rank, and an actor whose rank is gone reconnects to a rank that is ready."""
    objects = rendered[target]
    pod = learner_workload(objects)["spec"]["template"]
    actors = by_kind(objects, "Deployment")["relayrl-actor"]["spec"]["template"]["spec"]["containers"][0]
    host = container_env(objects, actors)["RELAYRL_LEARNER"].rpartition(":")[0]
    service = by_kind(objects, "Service")[host]["spec"]
    assert service.get("clusterIP") != "None" and service["selector"].items() <= pod["metadata"]["labels"].items()


def test_the_ranks_job_runs_the_learners_pod(rendered):
    """One pod template: the ranks' Job runs the base Deployment's pod, with only what a rank needs added."""
    base = by_kind(rendered["base"], "Deployment")["relayrl-learner"]["spec"]["template"]
    job = learner_workload(rendered["overlays/ranks"])
    assert job["kind"] == "Job" and "relayrl-learner" not in by_kind(rendered["overlays/ranks"], "Deployment")
    template = copy.deepcopy(job["spec"]["template"])
    spec, container = template["spec"], template["spec"]["containers"][0]
    assert spec.pop("restartPolicy") == "Never" and spec.pop("subdomain") == "relayrl-learner-ranks"
    assert container["ports"].pop(0)["name"] == "rendezvous"
    container["startupProbe"]["failureThreshold"] = base["spec"]["containers"][0]["startupProbe"]["failureThreshold"]
    expected = copy.deepcopy(base)
    for t in (template, expected):  # the overlay's ConfigMap merge gives the learner's ConfigMap another hash
        t["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] = "relayrl-learner"
    assert template == expected


def test_the_rendered_rank_pods_form_one_group_and_finish_together(k8s_run, tmp_path, services):
    env = rendered_env(k8s_run, tmp_path, "ranks-run", overlay="ranks")
    host, _, port = env["learner"]["RELAYRL_RENDEZVOUS"].rpartition(":")
    assert host == "relayrl-learner-0.relayrl-learner-ranks" and port == "29400"
    cluster = Cluster(tmp_path)
    rendezvous, ports = f"127.0.0.1:{free_port()}", [free_port(), free_port()]  # pod 0's name, on loopback
    learners = []
    for index, port in enumerate(ports):  # one pod per rank: the same environment, its own address
        learner, _ = cluster.learner(env["learner"], f"learner-{index}", port, steps=40_000,
                                     RELAYRL_RENDEZVOUS=rendezvous)
        services.append(learner)
        learners.append(learner)
    for index, port in enumerate(ports):  # the learner Service sends each actor's connection to one rank
        actor, _, _ = cluster.actor(env["actor"], f"actor-{index}", port)
        services.append(actor)
    for index, learner in enumerate(learners):
        try:
            assert learner.popen.wait(timeout=240) == 0, learner.tail()
        except subprocess.TimeoutExpired:
            pytest.fail(f"the ranks did not finish\n{learners[0].tail()}\n{learners[1].tail()}")
        log = learner.log.read_text()
        assert f"rank {index} of 2" in log and "stopped: max_env_steps" in log, learner.tail()
        assert f"actor actor-{index} disconnected" in log, f"each rank serves the actor sent to it\n{learner.tail()}"
    # Rank 0 alone writes the checkpoints; the ranks compared their weights every 100 versions (a mismatch fails
    # the group, and neither would have exited 0), so the run must have gone past a check.
    final = re.search(r"final checkpoint \S+ \(policy version (\d+)\)", learners[0].log.read_text())
    assert final and int(final.group(1)) >= 100, learners[0].tail()
    assert "final checkpoint" not in learners[1].log.read_text(), learners[1].tail()
    assert (cluster.volume / "ranks-run" / f"ckpt-{int(final.group(1)):012d}.pt").is_file()
