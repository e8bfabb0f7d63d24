"""Videos of greedy episodes: real MP4 files that ffmpeg decodes, as long as the episode they show."""

from __future__ import annotations

import gymnasium as gym
import imageio_ffmpeg
import pytest
import torch

from relayrl.envs import env_action
from relayrl.model import ActorCritic
from relayrl.video import record_greedy

pytest.importorskip("moviepy")


def greedy_length(model: ActorCritic, env_id: str, seed: int) -> int:
    """The same greedy episode, played again without rendering: its number of steps."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    steps, done = 0, False
    with torch.inference_mode():
        while not done:
            action, _ = model.act(torch.as_tensor(obs, dtype=torch.float32)[None], greedy=True)
            obs, _, terminated, truncated, _ = env.step(env_action(action.numpy()[0], env.action_space))
            steps, done = steps + 1, terminated or truncated
    env.close()
    return steps


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_record_greedy_writes_decodable_mp4s_of_the_episodes(tmp_path, env_id):
    env = gym.make(env_id)
    torch.manual_seed(0)
    model = ActorCritic(env.observation_space, env.action_space, (16, 16))
    render = gym.make(env_id, render_mode="rgb_array")
    render.reset(seed=0)
    height, width, _ = render.render().shape
    render.close()
    paths = record_greedy(model, env_id, tmp_path, episodes=2, seed=5, name="clip")
    assert [p.name for p in paths] == ["clip-episode-0.mp4", "clip-episode-1.mp4"]
    for k, path in enumerate(paths):
        frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(path))  # decodes the whole stream
        # RecordVideo keeps the reset frame and one per step; moviepy's encoder can lose the last one to
        # rounding the clip's duration (Pendulum at 30 fps: 201 frames kept, 200 encoded)
        length = greedy_length(model, env_id, seed=5 + k)
        assert length <= frames <= length + 1
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        assert meta["size"] == (width, height)
        first = next(reader)
        assert len(first) == width * height * 3  # an RGB frame of the env's render size
