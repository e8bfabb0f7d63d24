"""Gymnasium vector environments, made the same way by the learner (for the spaces), every actor and eval.

- ``module:EnvId`` ids import ``module`` first (Gymnasium's own form), so a user's package registers its
  envs wherever the run is made; keyword arguments (``--env-kwargs``) go to the env's constructor.
- ``MinAtar/...`` ids register MinAtar's envs first (its package does not on import).
- Atari (``ALE/...`` and the ``...NoFrameskip-v4`` ids): ale-py's C++ ``AtariVectorEnv`` with the
  DeepMind preprocessing (no-op starts, frame skip 4 with max-pooling, 84x84 grayscale, 4 stacked frames;
  FIRE pressed to start each game and, in games that wait for it, each new life: see FireAfterLifeLoss).
  It steps ~1.3x faster than Gymnasium's wrappers over a loop of envs (8 envs, one core). Its rewards and
  episodes are the true ones: clipping and episodic life are training signals the collector applies.
- Otherwise one NumPy-vectorised env when the id has a vector entry point (CartPole: ~7x faster at 64
  envs), else a synchronous loop over single envs.

All use Gymnasium's default next-step autoreset; rollouts mark the reset transitions invalid.
"""

from __future__ import annotations

import importlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


def env_kwargs(text: str) -> dict[str, Any]:
    """The env's keyword arguments from their JSON form (as --env-kwargs and the RunConfig carry them)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {text!r}")
    return value


class EnvError(ValueError):
    """An env that cannot be made here: an unknown id, a module that does not import, bad keyword arguments."""


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The spec of ``env_id``, importing what registers it: the id's module, or ale-py for Atari ids."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(
                f"env {env_id!r}: cannot import module {module!r} ({exc}); install it where the learner and "
                "every actor run (README: your own environment)"
            ) from None
    elif name.startswith("ALE/") or name.endswith(("NoFrameskip-v4", "Deterministic-v4")):
        try:
            import ale_py
        except ImportError:
            raise EnvError(f"env {env_id!r}: Atari needs ale-py: pip install 'relayrl[atari]'") from None
        gym.register_envs(ale_py)
    elif name.startswith("MinAtar/") and name not in gym.registry:
        try:
            import minatar.gym
        except ImportError:
            raise EnvError(f"env {env_id!r}: MinAtar needs its package: pip install minatar") from None
        minatar.gym.register_envs()  # the package registers its ids only when asked
    try:
        return gym.spec(name)
    except gym.error.Error as exc:
        raise EnvError(f"env {env_id!r}: {exc}") from None


def is_atari(env_id: str) -> bool:
    return str(env_spec(env_id).entry_point).startswith("ale_py")


def _atari_vector_env(spec: gym.envs.registration.EnvSpec, num_envs: int, kwargs: Mapping[str, Any]):
    from ale_py.vector_env import AtariVectorEnv

    options = {
        "repeat_action_probability": spec.kwargs.get("repeat_action_probability", 0.0),
        "full_action_space": spec.kwargs.get("full_action_space", False),
        # One thread per actor process: actors scale out by processes, and more threads than cores hurt.
        "num_threads": 1,
        **kwargs,
        # The true rewards and episodes; RolloutCollector clips rewards and ends lives for training only.
        "reward_clipping": False,
        "episodic_life": False,
    }
    env = AtariVectorEnv(spec.kwargs["game"], num_envs, **options)
    fire = _fire_action(env)
    # ale-py's own switch for pressing FIRE at the start of a game turns ours off too
    return FireAfterLifeLoss(env, fire) if fire is not None and options.get("use_fire_reset", True) else env


class FireAfterLifeLoss(gym.vector.VectorWrapper):
    """Press FIRE for the agent on the step after a lost life (the game going on), in games such as Breakout
    that wait for it. DeepMind's wrappers do the same (SB3's FireResetEnv presses it in the reset that follows
    each lost life); without it a policy that has not learnt to press FIRE idles until the time limit. That
    step's action was not the agent's: ``info["fired"]`` flags it, and the collector does not train on it."""

    def __init__(self, env: gym.vector.VectorEnv, fire: int) -> None:
        super().__init__(env)
        self.fire = fire
        self.lives = np.zeros(env.num_envs, np.int64)
        self.pending = np.zeros(env.num_envs, bool)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.lives = np.array(info["lives"])
        self.pending = np.zeros(self.num_envs, bool)
        return obs, info

    def step(self, actions):
        fired = self.pending
        obs, reward, terminated, truncated, info = self.env.step(np.where(fired, self.fire, actions))
        lives = np.array(info["lives"])
        self.pending = (lives < self.lives) & ~(terminated | truncated)
        self.lives = lives
        return obs, reward, terminated, truncated, {**info, "fired": fired}


def _fire_action(env) -> int | None:
    """FIRE's index where a game needs it to start (SB3's test: the second of at least three actions)."""
    names = [action.name for action in env.ale.get_action_set()]
    return 1 if len(names) >= 3 and names[1] == "FIRE" else None


def make_vector_env(env_id: str, num_envs: int, env_kwargs: Mapping[str, Any] | None = None) -> gym.vector.VectorEnv:
    spec = env_spec(env_id)
    kwargs = dict(env_kwargs or {})
    try:
        if str(spec.entry_point).startswith("ale_py"):
            env = _atari_vector_env(spec, num_envs, kwargs)
        else:
            mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
            env = gym.make_vec(spec.id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    except TypeError as exc:  # an unknown keyword argument
        raise EnvError(f"env {env_id!r} with kwargs {kwargs}: {exc}") from None
    if isinstance(env.single_observation_space, gym.spaces.Tuple):
        env = TupleAsDict(env)
    autoreset = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if autoreset != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise EnvError(f"{env_id}: vector env autoresets in mode {autoreset}; RelayRL expects NEXT_STEP")
    return env


def single_spaces(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> tuple[gym.Space, gym.Space]:
    """The observation and action space of one environment of ``env_id``, as the vector env makes it."""
    env = make_vector_env(env_id, 1, env_kwargs)
    try:
        return env.single_observation_space, env.single_action_space
    finally:
        env.close()


def env_action(actions: np.ndarray, action_space: gym.Space) -> np.ndarray:
    """What the environment receives: Gaussian samples are clipped to the Box (the raw sample is trained on);
    MultiDiscrete and MultiBinary actions in the space's own dtype."""
    if isinstance(action_space, gym.spaces.Box):
        return np.clip(actions, action_space.low, action_space.high)
    if isinstance(action_space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return actions.astype(action_space.dtype, copy=False)
    return actions


class TupleAsDict(gym.vector.VectorObservationWrapper):
    """A Tuple observation space as a Dict keyed "0", "1", ... (in order), so that it travels and is encoded as
    a Dict is: one tensor and one extractor per part."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        single = env.single_observation_space
        self.single_observation_space = gym.spaces.Dict(OrderedDict((str(i), s) for i, s in enumerate(single)))
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)

    def observations(self, observations):
        return {str(i): part for i, part in enumerate(observations)}
