"""Running statistics for observation and reward normalisation, in plain NumPy.

The learner is their one owner: it folds in what actors send, and the statistics travel inside the
model's state (see ActorCritic's buffers), so every actor, checkpoint and ``relayrl eval`` uses the
same ones. Observations are normalised as clip((x - mean) / sqrt(var + eps), -10, 10); rewards are
divided by the standard deviation of the discounted return (as Stable-Baselines3's VecNormalize does).
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-8
CLIP = 10.0


def statistic_name(stat: str, key: str | None) -> str:
    """The model buffer holding one observation statistic ("mean", "var", "count") of a vector observation (key
    None) or of one key of a Dict observation: the name it travels under in every weights message."""
    return f"obs_{stat}" if key is None else f"obs_{stat}_{key}"


def merge_moments(
    count: float, mean: np.ndarray, var: np.ndarray, batch: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Fold ``batch`` (samples along axis 0) into running (count, mean, var): Chan et al.'s parallel update.

    Exact: the result equals the mean and population variance of every sample seen so far.
    """
    n = batch.shape[0]
    if n == 0:
        return count, mean, var
    batch = batch.astype(np.float64, copy=False)
    return _merge(count, mean, var, n, batch.mean(axis=0), batch.var(axis=0))


def _merge(count: float, mean, var, n: float, batch_mean, batch_var) -> tuple[float, np.ndarray, np.ndarray]:
    total = count + n
    delta = batch_mean - mean
    new_mean = mean + delta * (n / total)
    m2 = var * count + batch_var * n + delta**2 * (count * n / total)
    return total, new_mean, m2 / total


def shifted_sums(batch: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """[n, sum(x - shift), sum((x - shift)^2)] per feature (shape [3, *feature]) of ``batch`` (samples along axis
    0): sums that add up across learner ranks, which then fold one batch of all their samples (merge_sums).
    Shifted by the running mean, so the variance taken from them does not lose its digits to a large mean."""
    centred = batch.astype(np.float64, copy=False) - shift
    return np.stack([np.full(np.shape(shift), float(batch.shape[0])), centred.sum(axis=0), (centred**2).sum(axis=0)])


def merge_sums(
    count: float, mean: np.ndarray, var: np.ndarray, sums: np.ndarray, shift: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """merge_moments of the batch that ``sums`` (shifted_sums' rows, added over ranks) describe."""
    n = float(np.max(sums[0]))
    if n == 0:
        return count, mean, var
    centred_mean = sums[1] / n
    return _merge(count, mean, var, n, shift + centred_mean, np.maximum(sums[2] / n - centred_mean**2, 0.0))


def discounted_returns(
    running: np.ndarray, rewards: np.ndarray, ended: np.ndarray, valid: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Advance each env's running discounted return through a [T, N] rollout.

    ``running`` is each env's return so far, G <- gamma * G + r, restarted after an episode ends.
    Returns (the values of G at each valid step, flattened; the running returns after the rollout).
    """
    running = running.copy()
    seen = []
    for t in range(rewards.shape[0]):
        running = np.where(valid[t], gamma * running + rewards[t], running)
        seen.append(running[valid[t]])
        running = np.where(ended[t] & valid[t], 0.0, running)
    return np.concatenate(seen) if seen else np.zeros(0), running


def scale_rewards(rewards: np.ndarray, return_var: float) -> np.ndarray:
    """Rewards divided by the discounted return's standard deviation, clipped to +-10."""
    return np.clip(rewards / np.sqrt(return_var + EPSILON), -CLIP, CLIP).astype(np.float32)


def normalize_observations(obs: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """clip((obs - mean) / sqrt(var + eps), -10, 10), as float32 (the NumPy twin of ActorCritic.normalize)."""
    return np.clip((obs - mean) / np.sqrt(var + EPSILON), -CLIP, CLIP).astype(np.float32)
