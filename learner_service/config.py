"""The learner's configuration: every flag of `relayrl learner` and its RELAYRL_* variable."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from relayrl import presets
from relayrl.architecture import CNNS, features_kwargs, parse_net_arch
from relayrl.config import ConfigError, check_credentials, coerce, describe, option, require
from relayrl.envs import env_kwargs

# What a checkpoint must match to be resumed (learner_service/resume.py refuses one that differs in any):
# --run-name auto names a run after these, so changing one starts a new run instead of a refused resume.
RUN_IDENTITY = ("env", "hidden_sizes", "activation", "optimizer", "normalize_observations", "normalize_rewards",
                "use_sde")
# More of the model's identity, named only where they differ from these defaults (runs named before they existed
# keep their names).
MODEL_IDENTITY = {"net_arch": "", "cnn": "auto", "features_extractor": "", "features_kwargs": ""}
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

# The built-in defaults of what a preset sets, for an env without one (or --preset none), by algorithm; a field
# left None takes its algorithm's value in validate. a2c: Stable-Baselines3's A2C defaults (PyTorch RMSprop, lr 7e-4,
# alpha 0.99, eps 1e-5, 5 steps, gamma 0.99, raw advantages; the rest are the fields' own defaults: GAE lambda 1,
# value 0.5, no entropy bonus, clip 0.5), what the presets of the domains suite start from and what beat the earlier
# defaults (Adam 5e-3, gamma 0.98, 16 steps, normalised advantages) on MinAtar Breakout and TwoWalkers (their
# presets' screens). a3c: the earlier defaults, kept: SB3 has no A3C to take them from, and nothing measured others.
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "a2c": {"n_steps": 5, "gamma": 0.99, "normalize_advantage": False, "optimizer": "rmsprop_torch", "lr": 7e-4},
    "a3c": {"n_steps": 16, "gamma": 0.98, "normalize_advantage": True, "optimizer": "adam", "lr": 1e-3},
}


@dataclass
class LearnerConfig:
    env: str = option(
        "CartPole-v1",
        "Gymnasium environment id. Observations: Box of any shape (images: 3-D uint8, bool or [0, 1] floats, "
        "channels first or last, e.g. ALE/Pong-v5), Discrete, MultiDiscrete, MultiBinary, or a Dict or Tuple of "
        "those; actions: Discrete, MultiDiscrete, MultiBinary or a flat Box. "
        "Your own: my_pkg.envs:MyEnv-v0 imports my_pkg.envs first (it must register MyEnv-v0), here and on "
        "every actor.",
    )
    env_kwargs: str = option(
        "", 'Keyword arguments for the env, a JSON object, e.g. \'{"size": 8}\'; actors make their envs with them.'
    )
    preset: str = option(
        "auto",
        "Hyperparameters for the env: auto takes relayrl/presets/'s entry for --env and --algo when there is one; "
        "none keeps the built-in defaults; an env id takes that env's entry. Flags and RELAYRL_* variables "
        "override a preset's values.",
    )
    algo: str = option(
        "a2c", "a2c: synchronous rounds, on-policy. a3c: asynchronous, applied on arrival.", choices=("a2c", "a3c")
    )
    transport: str | None = option(
        None,
        "What actors send: trajectories or gradients (a3c only). Default: trajectories for a2c, gradients for a3c.",
        choices=(None, "trajectories", "gradients"),
    )
    host: str = option("0.0.0.0", "Address the gRPC server binds.")
    port: int = option(50051, "gRPC port; 0 picks a free one.")
    metrics_port: int = option(9400, "Prometheus /metrics port; 0 picks a free one, negative disables.")
    device: str = option("auto", "Torch device for model and optimizer: auto (CUDA when present), cpu, cuda, cuda:N.")
    threads: int = option(1, "Torch intra-op threads for updates.")
    seed: int = option(0, "Seed for the model's initialisation and, through actor indices, the actors' envs.")
    hidden_sizes: tuple[int, ...] = option(
        (64, 64), "Hidden layer sizes of the policy and value MLPs, each its own (SB3's net_arch=[64, 64])."
    )
    activation: str = option("tanh", "Hidden-layer nonlinearity of both MLPs.", choices=("tanh", "relu"))
    net_arch: str = option(
        "",
        "Separate or shared layers, in SB3's dict form: 'pi=64,64;vf=256,256' gives the policy and the value net "
        "their own; 'shared=128;pi=64;vf=64' adds a trunk both read first. Default: --hidden-sizes for each "
        "(none for a lone image: one linear layer per head over the CNN, as SB3's CnnPolicy).",
    )
    cnn: str = option(
        "auto",
        "The CNN for image observations (3-D uint8 or bool, or float in [0, 1]; channels first or last): nature "
        "(Mnih et al. 2015, 36x36 and up), small (MinAtar's: one 3x3 convolution, 128 units), impala (Espeholt "
        "et al. 2018's residual network, for 64x64); auto: nature from 36x36 up, small below.",
        choices=CNNS,
    )
    features_extractor: str = option(
        "",
        "Your own features extractor, pkg.module:Class: a torch.nn.Module built as Class(observation_space, "
        "**features_kwargs) with an int features_dim, mapping preprocessed observations (float; images channels "
        "first in [0, 1]; Discrete one-hot; a dict for Dict spaces) to [batch, features_dim]. The module must be "
        "importable here and on every actor; it is checked at start on the env's spaces.",
    )
    features_kwargs: str = option("", "Keyword arguments of --features-extractor, a JSON object.")
    n_steps: int | None = option(
        None, "Steps per environment in one rollout (the n of n-step returns). Default: 5 for a2c (SB3's), 16 for a3c."
    )
    gamma: float | None = option(None, "Discount factor. Default: 0.99 for a2c (SB3's), 0.98 for a3c.")
    gae_lambda: float = option(1.0, "GAE lambda; 1.0 gives plain n-step returns.")
    value_coef: float = option(0.5, "Weight of the value loss.")
    entropy_coef: float = option(0.0, "Weight of the entropy bonus.")
    normalize_advantage: bool | None = option(
        None, "Normalise advantages per update (steadier with large batches). Default: off for a2c (SB3's), on for a3c."
    )
    normalize_observations: bool = option(
        False,
        "Normalise observations by their running mean and variance. The learner owns the statistics, ships them "
        "with every weights version and saves them in checkpoints (trajectories transport only).",
    )
    normalize_rewards: bool = option(
        False,
        "Divide rewards by the running standard deviation of the discounted return, on the learner "
        "(trajectories transport only).",
    )
    clip_rewards: bool = option(
        False, "Train on rewards clipped to their sign (Atari's preset); reported returns stay the true ones."
    )
    episodic_life: bool = option(
        False, "Train as if a lost life ended the episode (Atari's preset; the env must report 'lives')."
    )
    ortho_init: bool = option(True, "Orthogonal initialisation of the MLPs (else torch's default).")
    log_std_init: float = option(0.0, "Initial log standard deviation of the Gaussian policy (Box actions).")
    use_sde: bool = option(
        False,
        "Box actions: generalised state-dependent exploration (gSDE, Raffin et al. 2022): the noise is a linear "
        "function of the policy's last hidden features, with one log-std per feature and action.",
    )
    sde_sample_freq: int = option(
        0, "gSDE: draw each env's exploration matrix every this many steps; 0: at the start of each rollout."
    )
    lr_schedule: str = option(
        "constant",
        "constant, or linear: decay the learning rate linearly to 0 over --max-env-steps.",
        choices=("constant", "linear"),
    )
    max_grad_norm: float = option(0.5, "Gradient-norm clipping threshold.")
    optimizer: str | None = option(
        None,
        "adam; rmsprop (TensorFlow-style, eps inside the root, as published; its statistics are shared by all "
        "actors in a3c); or rmsprop_torch (PyTorch's, eps outside the root, as Stable-Baselines3's A2C uses). "
        "Default: rmsprop_torch for a2c (SB3's), adam for a3c.",
        choices=(None, "rmsprop", "rmsprop_torch", "adam"),
    )
    lr: float | None = option(
        None,
        "Learning rate. Default: 7e-4 for a2c (SB3's), 1e-3 for a3c (one step per actor rollout, not per round). "
        "The published A2C setting is --optimizer rmsprop --lr 7e-4.",
    )
    rms_alpha: float = option(0.99, "RMSprop smoothing constant.")
    rms_eps: float = option(1e-5, "Epsilon of RMSprop and Adam.")
    max_policy_lag: int = option(
        8,
        "Drop contributions computed on weights more than this many versions old, plus 4 per connected actor "
        "beyond the first in a3c (each one's contributions add to the others' lag); a2c always uses 0.",
    )
    round_timeout: float = option(5.0, "a2c: seconds a round waits for slow actors before closing on those in.")
    learners: int = option(
        1,
        "a2c: learner ranks on this machine, data-parallel on torch.distributed (started by torchrun; each rank "
        "serves its own actors on --port + its local rank, gradients averaged every update). Several machines: "
        "--learner-nodes.",
    )
    learner_nodes: int = option(
        1, "Machines the learner ranks span, --learners on each (a Kubernetes pod per machine, say); they meet at "
        "--rendezvous."
    )
    rendezvous: str | None = option(
        None, "HOST:PORT of torchrun's c10d rendezvous when --learner-nodes > 1: the same on every machine, served "
        "by whichever starts first."
    )
    max_restarts: int = option(
        3, "With several learner ranks: how often torchrun restarts the whole group after a rank fails; each "
        "restart continues from the newest checkpoint."
    )
    weights_check_every: int = option(
        100, "With several learner ranks: updates between two checks that every rank holds bitwise the same "
        "weights (a mismatch fails the group loudly); 0 never checks."
    )
    queue_size: int = option(64, "a3c: contributions waiting for the optimizer; a full queue slows senders down.")
    max_message_bytes: int = option(
        64 * 1024 * 1024,
        "Largest message accepted or sent. Larger ones (up to twice this) are refused with RESOURCE_EXHAUSTED and "
        "counted as rejected (reason too_large); beyond that gRPC refuses them itself, with the same code.",
    )
    keepalive_seconds: float = option(
        10.0,
        "Seconds between HTTP/2 keepalive pings on each connection; a peer that does not answer within as long "
        "again is dropped, so a silent network cut is noticed within about twice this.",
    )
    shutdown_grace: float = option(
        5.0, "On SIGTERM: seconds open streams get to finish after the final checkpoint, before they are cancelled."
    )
    tls_cert: str | None = option(None, "PEM certificate chain of the gRPC server; with --tls-key turns TLS on.")
    tls_key: str | None = option(None, "PEM private key of --tls-cert.")
    tls_ca: str | None = option(
        None, "PEM CA bundle: require every actor to present a client certificate it signed (mutual TLS)."
    )
    auth_token: str | None = option(
        None,
        "Shared secret every actor must send as 'authorization: Bearer TOKEN' (missing or wrong: UNAUTHENTICATED). "
        "Prefer the variable over the flag (flags show in ps); pair it with TLS off a trusted network.",
        secret=True,
    )
    auth_token_file: str | None = option(
        None,
        "Read the token from this file instead (a mounted Kubernetes Secret: never in the environment or ps); "
        "surrounding whitespace is dropped.",
    )
    health_port: int | None = option(
        None,
        "Also serve grpc.health.v1, alone and in plaintext, on this port (for probes that cannot speak TLS, "
        "e.g. Kubernetes grpc probes); it answers NOT_SERVING while the model is built or resumed. "
        "Default (or negative): health only on the gRPC port.",
    )
    checkpoint_dir: str | None = option(None, "Where checkpoints go (default: RUN_DIR/checkpoints, else none).")
    run_name: str | None = option(
        None,
        "Keep checkpoints in CHECKPOINT_DIR/RUN_NAME, one folder per run. auto: ENV-HASH, named after what a "
        "checkpoint must match to be resumed (env, network, optimizer, normalisation, gSDE), so another env or "
        "network on an old volume starts a new run beside the old one instead of being refused. "
        "Default: CHECKPOINT_DIR itself.",
    )
    checkpoint_every: float = option(60.0, "Seconds between checkpoints; a final one is written at shutdown.")
    keep_checkpoints: int = option(3, "How many checkpoints to keep.")
    resume: bool = option(False, "Continue from the newest good checkpoint in the checkpoint directory.")
    resume_finished: bool = option(
        False,
        "With --resume, also continue a run whose newest checkpoint marks it finished (it met its stop target). "
        "Without it, or a raise of the target it met (--max-env-steps, --target-return), such a resume is refused "
        "(exit 2): a restarted or re-applied finished run never trains on by accident.",
    )
    run_dir: str | None = option(None, "Folder for summary.json, the learning curve and (by default) checkpoints.")
    target_return: float | None = option(None, "Stop when the mean return of the last 100 episodes reaches this.")
    max_env_steps: int | None = option(None, "Stop after this many environment steps.")
    max_seconds: float | None = option(None, "Stop after this many seconds.")
    log_every: float = option(1.0, "Seconds between progress lines.")
    tensorboard: bool = option(
        True,
        "Write TensorBoard event files into --run-dir (SB3's tags: rollout/, train/, time/, eval/; x-axis: env "
        "steps), a point of each curve every --log-every seconds; view with tensorboard --logdir runs/.",
    )
    eval_every: int | None = option(
        None,
        "Every this many env steps, play the current policy greedily for --eval-episodes episodes on envs of the "
        "learner's own, on a thread beside the trainer, and keep the best policy as best.pt beside the "
        "checkpoints. Default: no evaluation during training.",
    )
    eval_episodes: int = option(10, "Greedy episodes per evaluation (one per env, all seeded alike each time).")
    eval_video_every: int = option(
        0, "Record one greedy episode as RUN_DIR/videos/*.mp4 every this many evaluations (0: never; relayrl[video])."
    )
    target_metric: str = option(
        "train",
        "What --target-return is compared with: train, the mean return of the last 100 training episodes; or "
        "eval, the mean return of the latest evaluation (needs --eval-every).",
        choices=("train", "eval"),
    )

    @classmethod
    def with_preset(cls, given: dict[str, Any]) -> dict[str, Any]:
        """The given values over the preset's (relayrl/presets/), with ``preset`` set to the one used or "none"."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        choice, env, algo = (given.get(name, fields[name].default) for name in ("preset", "env", "algo"))
        try:
            preset = presets.resolve(choice, env, algo)
        except presets.PresetError as exc:
            raise ConfigError(f"{describe('preset')}: {exc}") from None
        if preset is None:
            return {**given, "preset": "none"}
        origin = f"preset {preset.name} ({preset.source})"
        # Keys for fields this config lacks (num_envs, for a learner without actors) belong to `relayrl train`.
        from_preset = {k: coerce(cls, k, v, origin) for k, v in preset.values.items() if k in fields}
        return {**from_preset, **given, "preset": preset.env}

    def ranks(self) -> int:
        """Learner ranks in the group: --learners on each of --learner-nodes machines."""
        return self.learners * self.learner_nodes

    def validate(self) -> None:
        for name, value in ALGO_DEFAULTS[self.algo].items():
            if getattr(self, name) is None:  # neither given nor in the preset
                setattr(self, name, value)
        try:
            env_kwargs(self.env_kwargs)
        except ValueError as exc:
            raise ConfigError(f"{describe('env_kwargs')}: {exc}") from None
        if self.transport is None:
            self.transport = "trajectories" if self.algo == "a2c" else "gradients"
        require(
            not (self.algo == "a2c" and self.transport == "gradients"),
            "transport",
            "a2c makes one batched update from rollouts; gradients need --algo a3c",
        )
        if self.algo == "a2c":
            self.max_policy_lag = 0
        for name in ("normalize_observations", "normalize_rewards"):
            require(
                not (getattr(self, name) and self.transport == "gradients"),
                name,
                "the learner updates the statistics from the rollouts it receives: use --transport trajectories",
            )
        require(
            self.lr_schedule == "constant" or self.max_env_steps is not None,
            "lr_schedule",
            "linear decays over --max-env-steps, which is not set",
        )
        require(self.learners >= 1, "learners", "must be at least 1")
        require(self.ranks() == 1 or self.algo == "a2c", "learners",
                "several learner ranks average A2C's synchronous gradients; a3c applies each arrival on one learner")
        require(self.weights_check_every >= 0, "weights_check_every", "must be 0 or more")
        require(self.max_restarts >= 0, "max_restarts", "must be 0 or more")
        require(self.learner_nodes >= 1, "learner_nodes", "must be at least 1")
        require(self.learner_nodes == 1 or self.rendezvous is not None, "rendezvous",
                "needed with --learner-nodes > 1: the HOST:PORT where the machines' ranks meet")
        if self.rendezvous is not None:
            host, _, port = self.rendezvous.rpartition(":")
            require(bool(host) and port.isdigit() and 0 < int(port) <= 65535, "rendezvous",
                    f"{self.rendezvous!r} is not HOST:PORT")
        require(0 <= self.port <= 65535, "port", f"{self.port} is not a port")
        require(self.metrics_port <= 65535, "metrics_port", f"{self.metrics_port} is not a port")
        require(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
            "device",
            f"{self.device!r} is not auto, cpu, cuda or cuda:N",
        )
        require(self.threads >= 1, "threads", "must be at least 1")
        require(
            len(self.hidden_sizes) >= 1 and all(h > 0 for h in self.hidden_sizes),
            "hidden_sizes",
            "needs one or more positive sizes, e.g. 64,64",
        )
        try:
            parse_net_arch(self.net_arch, self.hidden_sizes)
        except ValueError as exc:
            raise ConfigError(f"{describe('net_arch')}: {exc}") from None
        try:
            features_kwargs(self.features_kwargs)
        except ValueError as exc:
            raise ConfigError(f"{describe('features_kwargs')}: {exc}") from None
        require(
            not self.features_kwargs or bool(self.features_extractor),
            "features_kwargs",
            "needs --features-extractor",
        )
        require(self.n_steps >= 1, "n_steps", "must be at least 1")
        require(self.sde_sample_freq >= 0, "sde_sample_freq", "must be 0 or more")
        require(0.0 < self.gamma <= 1.0, "gamma", "must be in (0, 1]")
        require(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "must be in [0, 1]")
        require(self.lr > 0, "lr", "must be positive")
        require(self.max_grad_norm > 0, "max_grad_norm", "must be positive")
        require(self.max_policy_lag >= 0, "max_policy_lag", "must be 0 or more")
        require(self.round_timeout > 0, "round_timeout", "must be positive")
        require(self.queue_size >= 1, "queue_size", "must be at least 1")
        require(self.max_message_bytes >= 1024, "max_message_bytes", "must be at least 1024")
        require(self.max_message_bytes <= 1 << 30, "max_message_bytes", "must be at most 1 GiB")
        require(self.keepalive_seconds >= 1, "keepalive_seconds", "must be at least 1")
        require(self.shutdown_grace >= 0, "shutdown_grace", "must be 0 or more")
        check_credentials(self)
        require(self.tls_ca is None or self.tls_cert is not None, "tls_ca", "mutual TLS needs --tls-cert and --tls-key")
        if self.health_port is not None and self.health_port < 0:
            self.health_port = None
        require(
            self.health_port is None or self.health_port <= 65535, "health_port", f"{self.health_port} is not a port"
        )
        require(
            self.health_port is None or self.health_port == 0 or self.health_port != self.port,
            "health_port",
            "must differ from --port",
        )
        require(self.checkpoint_every > 0, "checkpoint_every", "must be positive")
        require(self.keep_checkpoints >= 1, "keep_checkpoints", "must be at least 1")
        require(self.max_env_steps is None or self.max_env_steps > 0, "max_env_steps", "must be positive")
        require(self.max_seconds is None or self.max_seconds > 0, "max_seconds", "must be positive")
        require(self.log_every > 0, "log_every", "must be positive")
        require(self.eval_every is None or self.eval_every > 0, "eval_every", "must be positive")
        require(self.eval_episodes >= 1, "eval_episodes", "must be at least 1")
        require(self.eval_video_every >= 0, "eval_video_every", "must be 0 or more")
        require(
            self.eval_video_every == 0 or (self.eval_every is not None and self.run_dir is not None),
            "eval_video_every",
            "records evaluations into --run-dir: set --eval-every and --run-dir",
        )
        require(
            self.target_metric == "train" or self.eval_every is not None,
            "target_metric",
            "eval compares --target-return with evaluations: set --eval-every",
        )
        if self.checkpoint_dir is None and self.run_dir is not None:
            self.checkpoint_dir = f"{self.run_dir}/checkpoints"
        require(not (self.resume and self.checkpoint_dir is None), "resume", "needs --checkpoint-dir or --run-dir")
        if self.run_name == "auto":
            self.run_name = self.auto_run_name()
        require(
            self.run_name is None or RUN_NAME.fullmatch(self.run_name) is not None,
            "run_name",
            f"{self.run_name!r} must be auto or letters, digits, '.', '_', '-' (a folder name)",
        )
        if self.run_name is not None and self.checkpoint_dir is not None:
            self.checkpoint_dir = f"{self.checkpoint_dir}/{self.run_name}"

    def auto_run_name(self) -> str:
        """ENV-HASH: the env id made a folder name, and 8 hex digits of the RUN_IDENTITY values and the env's
        keyword arguments."""
        values = [getattr(self, name) for name in RUN_IDENTITY]
        kwargs = env_kwargs(self.env_kwargs)
        if kwargs:  # they may change the env's spaces; appended only when given, so older runs keep their names
            values.append(json.dumps(kwargs, sort_keys=True))
        values += [[name, getattr(self, name)] for name, default in MODEL_IDENTITY.items()
                   if getattr(self, name) != default]
        identity = json.dumps(values)
        env = re.sub(r"[^A-Za-z0-9._-]", "_", self.env)[:80]
        return f"{env}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
