from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProtoVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTO_VERSION_UNSPECIFIED: _ClassVar[ProtoVersion]
    PROTO_VERSION_1: _ClassVar[ProtoVersion]
    PROTO_VERSION_2: _ClassVar[ProtoVersion]
    PROTO_VERSION_3: _ClassVar[ProtoVersion]
    PROTO_VERSION_CURRENT: _ClassVar[ProtoVersion]
PROTO_VERSION_UNSPECIFIED: ProtoVersion
PROTO_VERSION_1: ProtoVersion
PROTO_VERSION_2: ProtoVersion
PROTO_VERSION_3: ProtoVersion
PROTO_VERSION_CURRENT: ProtoVersion

class NDArray(_message.Message):
    __slots__ = ("dtype", "shape", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class NamedTensor(_message.Message):
    __slots__ = ("name", "tensor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    tensor: NDArray
    def __init__(self, name: _Optional[str] = ..., tensor: _Optional[_Union[NDArray, _Mapping]] = ...) -> None: ...

class Space(_message.Message):
    __slots__ = ("kind", "n", "shape", "low", "high", "dtype", "nvec", "spaces")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Space.Kind]
        DISCRETE: _ClassVar[Space.Kind]
        BOX: _ClassVar[Space.Kind]
        MULTI_DISCRETE: _ClassVar[Space.Kind]
        MULTI_BINARY: _ClassVar[Space.Kind]
        DICT: _ClassVar[Space.Kind]
    KIND_UNSPECIFIED: Space.Kind
    DISCRETE: Space.Kind
    BOX: Space.Kind
    MULTI_DISCRETE: Space.Kind
    MULTI_BINARY: Space.Kind
    DICT: Space.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    NVEC_FIELD_NUMBER: _ClassVar[int]
    SPACES_FIELD_NUMBER: _ClassVar[int]
    kind: Space.Kind
    n: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    low: NDArray
    high: NDArray
    dtype: str
    nvec: _containers.RepeatedScalarFieldContainer[int]
    spaces: _containers.RepeatedCompositeFieldContainer[NamedSpace]
    def __init__(self, kind: _Optional[_Union[Space.Kind, str]] = ..., n: _Optional[int] = ..., shape: _Optional[_Iterable[int]] = ..., low: _Optional[_Union[NDArray, _Mapping]] = ..., high: _Optional[_Union[NDArray, _Mapping]] = ..., dtype: _Optional[str] = ..., nvec: _Optional[_Iterable[int]] = ..., spaces: _Optional[_Iterable[_Union[NamedSpace, _Mapping]]] = ...) -> None: ...

class NamedSpace(_message.Message):
    __slots__ = ("name", "space")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    space: Space
    def __init__(self, name: _Optional[str] = ..., space: _Optional[_Union[Space, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("proto_version", "actor_id", "run_id", "env_id", "observation_space", "action_space", "num_envs")
    PROTO_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_SPACE_FIELD_NUMBER: _ClassVar[int]
    ACTION_SPACE_FIELD_NUMBER: _ClassVar[int]
    NUM_ENVS_FIELD_NUMBER: _ClassVar[int]
    proto_version: ProtoVersion
    actor_id: str
    run_id: str
    env_id: str
    observation_space: Space
    action_space: Space
    num_envs: int
    def __init__(self, proto_version: _Optional[_Union[ProtoVersion, str]] = ..., actor_id: _Optional[str] = ..., run_id: _Optional[str] = ..., env_id: _Optional[str] = ..., observation_space: _Optional[_Union[Space, _Mapping]] = ..., action_space: _Optional[_Union[Space, _Mapping]] = ..., num_envs: _Optional[int] = ...) -> None: ...

class RunConfig(_message.Message):
    __slots__ = ("env_id", "algo", "transport", "n_steps", "gamma", "gae_lambda", "value_coef", "entropy_coef", "max_grad_norm", "hidden_sizes", "seed", "normalize_advantage", "activation", "normalize_observations", "normalize_rewards", "use_sde", "sde_sample_freq", "env_kwargs", "clip_rewards", "episodic_life", "net_arch", "cnn", "features_extractor", "features_kwargs")
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    ALGO_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    N_STEPS_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    GAE_LAMBDA_FIELD_NUMBER: _ClassVar[int]
    VALUE_COEF_FIELD_NUMBER: _ClassVar[int]
    ENTROPY_COEF_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_SIZES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_ADVANTAGE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_REWARDS_FIELD_NUMBER: _ClassVar[int]
    USE_SDE_FIELD_NUMBER: _ClassVar[int]
    SDE_SAMPLE_FREQ_FIELD_NUMBER: _ClassVar[int]
    ENV_KWARGS_FIELD_NUMBER: _ClassVar[int]
    CLIP_REWARDS_FIELD_NUMBER: _ClassVar[int]
    EPISODIC_LIFE_FIELD_NUMBER: _ClassVar[int]
    NET_ARCH_FIELD_NUMBER: _ClassVar[int]
    CNN_FIELD_NUMBER: _ClassVar[int]
    FEATURES_EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_KWARGS_FIELD_NUMBER: _ClassVar[int]
    env_id: str
    algo: str
    transport: str
    n_steps: int
    gamma: float
    gae_lambda: float
    value_coef: float
    entropy_coef: float
    max_grad_norm: float
    hidden_sizes: _containers.RepeatedScalarFieldContainer[int]
    seed: int
    normalize_advantage: bool
    activation: str
    normalize_observations: bool
    normalize_rewards: bool
    use_sde: bool
    sde_sample_freq: int
    env_kwargs: str
    clip_rewards: bool
    episodic_life: bool
    net_arch: str
    cnn: str
    features_extractor: str
    features_kwargs: str
    def __init__(self, env_id: _Optional[str] = ..., algo: _Optional[str] = ..., transport: _Optional[str] = ..., n_steps: _Optional[int] = ..., gamma: _Optional[float] = ..., gae_lambda: _Optional[float] = ..., value_coef: _Optional[float] = ..., entropy_coef: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., hidden_sizes: _Optional[_Iterable[int]] = ..., seed: _Optional[int] = ..., normalize_advantage: _Optional[bool] = ..., activation: _Optional[str] = ..., normalize_observations: _Optional[bool] = ..., normalize_rewards: _Optional[bool] = ..., use_sde: _Optional[bool] = ..., sde_sample_freq: _Optional[int] = ..., env_kwargs: _Optional[str] = ..., clip_rewards: _Optional[bool] = ..., episodic_life: _Optional[bool] = ..., net_arch: _Optional[str] = ..., cnn: _Optional[str] = ..., features_extractor: _Optional[str] = ..., features_kwargs: _Optional[str] = ...) -> None: ...

class Weights(_message.Message):
    __slots__ = ("version", "tensors")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    version: int
    tensors: _containers.RepeatedCompositeFieldContainer[NamedTensor]
    def __init__(self, version: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[NamedTensor, _Mapping]]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("config", "observation_space", "action_space", "weights", "actor_index")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_SPACE_FIELD_NUMBER: _ClassVar[int]
    ACTION_SPACE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_INDEX_FIELD_NUMBER: _ClassVar[int]
    config: RunConfig
    observation_space: Space
    action_space: Space
    weights: Weights
    actor_index: int
    def __init__(self, config: _Optional[_Union[RunConfig, _Mapping]] = ..., observation_space: _Optional[_Union[Space, _Mapping]] = ..., action_space: _Optional[_Union[Space, _Mapping]] = ..., weights: _Optional[_Union[Weights, _Mapping]] = ..., actor_index: _Optional[int] = ...) -> None: ...

class EpisodeStats(_message.Message):
    __slots__ = ("returns", "lengths")
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    LENGTHS_FIELD_NUMBER: _ClassVar[int]
    returns: _containers.RepeatedScalarFieldContainer[float]
    lengths: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, returns: _Optional[_Iterable[float]] = ..., lengths: _Optional[_Iterable[int]] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("policy_version", "observations", "actions", "rewards", "terminated", "truncated", "valid", "log_probs", "bootstrap_observations", "episodes", "observation_parts", "bootstrap_observation_parts")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    LOG_PROBS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_PARTS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_OBSERVATION_PARTS_FIELD_NUMBER: _ClassVar[int]
    policy_version: int
    observations: NDArray
    actions: NDArray
    rewards: NDArray
    terminated: NDArray
    truncated: NDArray
    valid: NDArray
    log_probs: NDArray
    bootstrap_observations: NDArray
    episodes: EpisodeStats
    observation_parts: _containers.RepeatedCompositeFieldContainer[NamedTensor]
    bootstrap_observation_parts: _containers.RepeatedCompositeFieldContainer[NamedTensor]
    def __init__(self, policy_version: _Optional[int] = ..., observations: _Optional[_Union[NDArray, _Mapping]] = ..., actions: _Optional[_Union[NDArray, _Mapping]] = ..., rewards: _Optional[_Union[NDArray, _Mapping]] = ..., terminated: _Optional[_Union[NDArray, _Mapping]] = ..., truncated: _Optional[_Union[NDArray, _Mapping]] = ..., valid: _Optional[_Union[NDArray, _Mapping]] = ..., log_probs: _Optional[_Union[NDArray, _Mapping]] = ..., bootstrap_observations: _Optional[_Union[NDArray, _Mapping]] = ..., episodes: _Optional[_Union[EpisodeStats, _Mapping]] = ..., observation_parts: _Optional[_Iterable[_Union[NamedTensor, _Mapping]]] = ..., bootstrap_observation_parts: _Optional[_Iterable[_Union[NamedTensor, _Mapping]]] = ...) -> None: ...

class Gradient(_message.Message):
    __slots__ = ("policy_version", "grads", "env_steps", "episodes", "policy_loss", "value_loss", "entropy")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    GRADS_FIELD_NUMBER: _ClassVar[int]
    ENV_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    POLICY_LOSS_FIELD_NUMBER: _ClassVar[int]
    VALUE_LOSS_FIELD_NUMBER: _ClassVar[int]
    ENTROPY_FIELD_NUMBER: _ClassVar[int]
    policy_version: int
    grads: _containers.RepeatedCompositeFieldContainer[NamedTensor]
    env_steps: int
    episodes: EpisodeStats
    policy_loss: float
    value_loss: float
    entropy: float
    def __init__(self, policy_version: _Optional[int] = ..., grads: _Optional[_Iterable[_Union[NamedTensor, _Mapping]]] = ..., env_steps: _Optional[int] = ..., episodes: _Optional[_Union[EpisodeStats, _Mapping]] = ..., policy_loss: _Optional[float] = ..., value_loss: _Optional[float] = ..., entropy: _Optional[float] = ...) -> None: ...

class ActorMessage(_message.Message):
    __slots__ = ("hello", "rollout", "gradient")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    rollout: Rollout
    gradient: Gradient
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., rollout: _Optional[_Union[Rollout, _Mapping]] = ..., gradient: _Optional[_Union[Gradient, _Mapping]] = ...) -> None: ...

class Stop(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("consumed",)
    CONSUMED_FIELD_NUMBER: _ClassVar[int]
    consumed: int
    def __init__(self, consumed: _Optional[int] = ...) -> None: ...

class LearnerMessage(_message.Message):
    __slots__ = ("welcome", "weights", "stop", "ack")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    weights: Weights
    stop: Stop
    ack: Ack
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., weights: _Optional[_Union[Weights, _Mapping]] = ..., stop: _Optional[_Union[Stop, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ...) -> None: ...
