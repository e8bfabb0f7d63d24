"""rl-baselines3-zoo's A2C hyperparameters and published results, and their translation to SB3 arguments.

HYPERPARAMS is hyperparams/a2c.yml of DLR-RM/rl-baselines3-zoo at commit
22e3ff2450fd92033f7f032915e1f64894a09584 (2026-04-23), entry by entry for the learning suite's envs, with
the YAML's strings kept as they are (``lin_7e-4``, the policy_kwargs expression) and read by ``sb3_setup``
the way the zoo's ExperimentManager reads them. The zoo has no HalfCheetah-v5 entry: its HalfCheetah-v4
entry (the MuJoCo defaults) is used. PUBLISHED is the zoo's benchmark.md A2C mean return for that env
(HalfCheetah-v3 and LunarLander-v2 there: the versions it was run with).
"""

from __future__ import annotations

import ast
from typing import Any

ZOO_COMMIT = "22e3ff2450fd92033f7f032915e1f64894a09584"

HYPERPARAMS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {"n_envs": 8, "n_timesteps": 5e5, "policy": "MlpPolicy", "ent_coef": 0.0},
    "Acrobot-v1": {"normalize": True, "n_envs": 16, "n_timesteps": 5e5, "policy": "MlpPolicy", "ent_coef": 0.0},
    "MountainCar-v0": {"normalize": True, "n_envs": 16, "n_timesteps": 1e6, "policy": "MlpPolicy", "ent_coef": 0.0},
    "LunarLander-v3": {"n_envs": 8, "n_timesteps": 2e5, "policy": "MlpPolicy", "gamma": 0.995, "n_steps": 5,
                       "learning_rate": "lin_0.00083", "ent_coef": 0.00001},
    "Pendulum-v1": {"normalize": True, "n_envs": 8, "n_timesteps": 1e6, "policy": "MlpPolicy", "ent_coef": 0.0,
                    "max_grad_norm": 0.5, "n_steps": 8, "gae_lambda": 0.9, "vf_coef": 0.4, "gamma": 0.9,
                    "use_rms_prop": True, "normalize_advantage": False, "learning_rate": "lin_7e-4",
                    "use_sde": True, "policy_kwargs": "dict(log_std_init=-2, ortho_init=False)"},
    "MountainCarContinuous-v0": {"normalize": True, "n_envs": 4, "n_steps": 100, "n_timesteps": 1e5,
                                 "policy": "MlpPolicy", "ent_coef": 0.0, "use_sde": True, "sde_sample_freq": 16,
                                 "policy_kwargs": "dict(log_std_init=0.0, ortho_init=False)"},
    "HalfCheetah-v5": {"normalize": True, "n_timesteps": 1e6, "policy": "MlpPolicy"},  # zoo: HalfCheetah-v4
}

PUBLISHED: dict[str, float] = {
    "CartPole-v1": 500.0,
    "Acrobot-v1": -83.4,
    "MountainCar-v0": -111.0,
    "LunarLander-v3": 156.0,
    "Pendulum-v1": -163.0,
    "MountainCarContinuous-v0": 91.0,
    "HalfCheetah-v5": 3041.0,
}

ENVS = list(HYPERPARAMS)


def budget(env_id: str) -> int:
    """The zoo's training budget in env steps (n_timesteps), used for RelayRL and SB3 alike."""
    return int(HYPERPARAMS[env_id]["n_timesteps"])


def linear_schedule(initial: float):
    """The zoo's ``lin_<value>``: the learning rate falls linearly from ``initial`` to 0 over training."""
    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial
    return schedule


def _policy_kwargs(text: str) -> dict[str, Any]:
    """The zoo writes policy_kwargs as a Python expression, ``dict(k=v, ...)``; read it without eval()."""
    call = ast.parse(text, mode="eval").body
    is_dict = isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "dict"
    if not is_dict or call.args:
        raise ValueError(f"unsupported policy_kwargs {text!r}")
    out: dict[str, Any] = {}
    for kw in call.keywords:
        if isinstance(kw.value, ast.Attribute) and isinstance(kw.value.value, ast.Name) and kw.value.value.id == "nn":
            import torch.nn as nn  # activation_fn=nn.ReLU and the like

            out[kw.arg] = getattr(nn, kw.value.attr)
        else:
            out[kw.arg] = ast.literal_eval(kw.value)
    return out


def sb3_setup(env_id: str) -> dict[str, Any]:
    """The zoo's entry as SB3 pieces: n_envs, n_timesteps, normalize (None, or VecNormalize kwargs; the zoo
    passes the algorithm's gamma to VecNormalize) and the A2C keyword arguments."""
    params = dict(HYPERPARAMS[env_id])
    n_envs = int(params.pop("n_envs", 1))
    n_timesteps = int(params.pop("n_timesteps"))
    normalize = params.pop("normalize", False)
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key == "learning_rate" and isinstance(value, str):
            prefix, _, number = value.partition("_")
            if prefix != "lin":
                raise ValueError(f"unsupported schedule {value!r}")
            kwargs[key] = linear_schedule(float(number))
        elif key == "policy_kwargs" and isinstance(value, str):
            kwargs[key] = _policy_kwargs(value)
        else:
            kwargs[key] = value
    vec_normalize = None
    if normalize:
        vec_normalize = {} if normalize is True else dict(normalize)
        if "gamma" in kwargs:
            vec_normalize["gamma"] = kwargs["gamma"]
    return {"n_envs": n_envs, "n_timesteps": n_timesteps, "normalize": vec_normalize, "a2c_kwargs": kwargs}
