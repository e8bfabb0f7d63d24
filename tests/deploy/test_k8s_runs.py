"""Runs that start and end cleanly on Kubernetes: open-ended runs are a Deployment, runs with a stop target
the learner-job component's Job, which completes instead of being restarted into its target again; each run
keeps its checkpoints in its own folder of the PVC."""

from __future__ import annotations

import copy

import pytest

from .kustomize import TARGETS, by_kind, learner_workload, pod_config, service_of

STOP_TARGETS = ("target_return", "max_env_steps", "max_seconds")
CONFIG_ERROR_EXIT = 2  # relayrl.config.config_errors_exit_2


def learner_config(objects, scratch):
    template = learner_workload(objects)["spec"]["template"]
    return pod_config(objects, template, template["spec"]["containers"][0], scratch)


@pytest.mark.parametrize("target", TARGETS)
def test_a_deployment_runs_open_ended_and_a_job_has_a_stop_target(rendered, target, tmp_path):
    """A Deployment restarts a learner that exits 0 at its target: it would resume, meet it and exit again,
    forever. So a stop target belongs to the Job, and a Job without one would never complete."""
    objects = rendered[target]
    config = learner_config(objects, tmp_path)
    targets = {name: getattr(config, name) for name in STOP_TARGETS if getattr(config, name) is not None}
    if learner_workload(objects)["kind"] == "Job":
        if target == "all-components":
            return  # a test-only composition; the component leaves the target to the overlay (overlays/job)
        assert targets, "a learner Job needs RELAYRL_TARGET_RETURN, RELAYRL_MAX_ENV_STEPS or RELAYRL_MAX_SECONDS"
    else:
        assert not targets, f"a learner Deployment restarts a finished run: use components/learner-job for {targets}"


@pytest.mark.parametrize("target", TARGETS)
def test_runs_keep_checkpoints_in_their_own_folder(rendered, target, tmp_path):
    config = learner_config(rendered[target], tmp_path)
    assert config.resume and config.run_name and config.run_name.startswith(f"{config.env}-")
    assert config.checkpoint_dir.endswith(f"/{config.run_name}")


def test_the_job_runs_the_deployments_pod(rendered):
    """One pod template: the Job's is the base Deployment's (copied by a kustomize replacement), with only
    the restart policy that podFailurePolicy needs."""
    base = by_kind(rendered["base"], "Deployment")["relayrl-learner"]
    job = learner_workload(rendered["overlays/job"])
    assert job["kind"] == "Job" and "relayrl-learner" not in by_kind(rendered["overlays/job"], "Deployment")
    template = copy.deepcopy(job["spec"]["template"])
    assert template["spec"].pop("restartPolicy") == "Never"
    expected = copy.deepcopy(base["spec"]["template"])
    # The overlay's ConfigMap merge (the stop target) gives the learner's ConfigMap another hash.
    for t in (template, expected):
        t["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] = "relayrl-learner"
    assert template == expected


def test_a_refused_configuration_fails_the_job_once(rendered):
    """Exit 2 (a configuration the learner refuses) fails the Job at once: another pod would fail the same way.
    Other failures (exit 1: the trainer failed) get new pods that resume, up to backoffLimit."""
    job = learner_workload(rendered["overlays/job"])
    container = job["spec"]["template"]["spec"]["containers"][0]["name"]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail and fail[0]["onExitCodes"] == {"containerName": container, "operator": "In",
                                               "values": [CONFIG_ERROR_EXIT]}
    assert 1 <= job["spec"]["backoffLimit"] <= 10


@pytest.mark.parametrize("target", TARGETS)
def test_actors_of_a_deployment_stay_idle_when_the_run_ends(rendered, target, tmp_path):
    """A Deployment restarts a container that exits, even with status 0: an actor that exits when the
    learner says the run is over would be restarted, never welcomed, killed by its startup probe and
    crash-loop (KubePodCrashLooping for every actor). So actors there wait, idle and healthy, until deleted."""
    objects = rendered[target]
    for name, deployment in by_kind(objects, "Deployment").items():
        template = deployment["spec"]["template"]
        container = template["spec"]["containers"][0]
        if service_of(container) == "actor":
            assert pod_config(objects, template, container, tmp_path).when_finished == "wait", name
