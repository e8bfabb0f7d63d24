"""The learner on CUDA computes what it computes on the CPU, through its own transfers, waiting for the device
once per update; and what it writes on a GPU loads where there is none (relayrl bench --suite device reports
the same checks with their figures)."""

import dataclasses

import numpy as np
import torch

from learner_service.device_batch import host_state, pack_rollouts, stage, stage_rollouts
from relayrl.loss import FIELDS, gather
from relayrl_cli.bench import device, device_checks, pipeline

CUDA = torch.device("cuda")


def test_loss_terms_and_gradients_on_cuda_equal_the_cpus():
    result = device_checks.compare(quick=False)
    assert result["device"] == "cuda"
    for name, case in result["cases"].items():
        assert case["passed"], (name, case["strict"])  # TF32 off: float32 sums in another order only
        assert max(case["tf32"].values()) <= device_checks.TF32["rtol"], (name, case["tf32"])


def test_a_batch_reaches_the_device_in_one_pinned_copy_bit_for_bit():
    frames, actions = device_checks.FRAMES, device_checks.ACTIONS
    rollouts = [device_checks.rollout(frames, actions, 5, 8, seed) for seed in (0, 1)]
    staged = stage_rollouts(rollouts, FIELDS, CUDA)
    plain = gather(rollouts, FIELDS, torch.device("cpu"))
    for name in FIELDS:
        assert staged[name].device.type == "cuda" and staged[name].dtype == plain[name].dtype, name
        assert torch.equal(staged[name].cpu(), plain[name]), name
    assert staged["observations"].dtype == torch.uint8  # pixels cross as bytes, scaled on the device
    assert device_checks.count_synchronisations(lambda: pack_rollouts(rollouts, FIELDS, CUDA)) == 0


def test_an_update_waits_for_the_device_once_and_the_weights_copy_once():
    cost = device_checks.update_cost(actors=4, reps=3, target=CUDA)
    assert cost["synchronisations_per_update"] == 1  # the diagnostics and the gradient norm, read together
    assert cost["synchronisations_per_weights_copy"] == 1


def test_weights_copied_to_the_host_equal_the_devices():
    torch.manual_seed(0)
    model = device_checks.ActorCritic(device_checks.FRAMES, device_checks.ACTIONS, (64,)).to(CUDA)
    host = host_state(model)
    for name, tensor in model.state_dict().items():
        assert host[name].device.type == "cpu" and torch.equal(host[name], tensor.cpu()), name


def test_gradients_staged_on_cuda_are_copies_of_the_wire_buffers():
    grads = {"a": np.arange(10, dtype=np.float32), "b": np.ones((3, 3), np.float32)}
    for array in grads.values():
        array.setflags(write=False)
    staged = stage(grads, CUDA)
    assert all(staged[k].device.type == "cuda" and np.array_equal(staged[k].cpu().numpy(), grads[k]) for k in grads)


def test_a_cuda_checkpoint_evaluates_and_resumes_with_cuda_hidden(tmp_path):
    """`relayrl train` on CUDA writes the checkpoint; `relayrl eval` and a CPU learner with a CPU actor use it."""
    run_dir = tmp_path / "run"
    trained = pipeline.train(["--env", "CartPole-v1", "--actors", "1", "--device", "cuda", "--max-env-steps", "4000"],
                             timeout=300, run_dir=str(run_dir))
    p = dataclasses.asdict(Plan())
    result = device.checkpoint_elsewhere(device.Budget(300), "CartPole-v1", run_dir, trained, p)
    assert result["saved_on"] == ["cuda:0"] and result["loaded"], result
    assert "mean return" in result["eval_output"]


@dataclasses.dataclass
class Plan:
    eval_episodes: int = 2
    resume_steps: int = 1000
