# RelayRL. `make run` trains CartPole-v1 on this machine; `make test` runs the suite.
# Both create .venv and install what they need on first use.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3

.PHONY: install run test lint proto bench bench-learning bench-hold bench-device chaos mutation clean help

help:
	@echo "make run     train CartPole-v1 with A2C and 2 actor processes until solved"
	@echo "make test    run the test suite"
	@echo "make lint    ruff, and import-linter's layering contracts (pyproject.toml)"
	@echo "make proto   regenerate the Python stubs from proto/"
	@echo "make bench   the performance benchmark (see benchmarks/)"
	@echo "make bench-learning  the learning benchmark against rl-baselines3-zoo's A2C (hours; see benchmarks/)"
	@echo "make bench-device  the GPU learner on this machine in at most 8 minutes (ARGS=--quick: seconds, on the CPU)"
	@echo "make bench-hold  whether CartPole's solve holds at 1, 2, 8 actors x 16, 64, 256 envs (about 40 min)"
	@echo "make chaos   the chaos soak: faults together for CHAOS_SECONDS (600), seeded by CHAOS_SEED (1), results to CHAOS_OUT; see tests/e2e/chaos.py"
	@echo "make mutation  mutmut on the maths and training-signal modules (slow; report in docs/MUTATION.md)"
	@echo "make up / down / logs / k8s-run / k8s-finish / k8s-new-run   deploy (see docs/DEPLOY.md)"
	@echo "make test-containers  opt-in: build the image and run Compose + kube play in podman (minutes, ~1.5 GB)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,envs,atari]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/relayrl train --env CartPole-v1 --algo a2c --actors 2 --target-return 475

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Stubs are committed so a plain `pip install` works; tests/unit/test_proto_stubs.py fails if they are stale.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/relayrl/v1/relayrl.proto

bench: $(STAMP)
	$(VENV)/bin/relayrl bench --out benchmarks/results

# Resumable: runs already in benchmarks/results/learning.json are kept. One env: add ARGS="--envs Pendulum-v1".
bench-learning: $(STAMP)
	$(VENV)/bin/relayrl bench --suite learning --out benchmarks/results $(ARGS)

# Resumable too: runs already in benchmarks/results/hold.json are kept.
bench-hold: $(STAMP)
	$(VENV)/bin/relayrl bench --suite hold --out benchmarks/results $(ARGS)

# The one-shot device benchmark (issue 23): correctness on the GPU, Atari against SB3 on the same GPU, A3C,
# CartPole's scaling; stops itself within 8 minutes and writes benchmarks/results/device.{json,md}.
bench-device: $(STAMP)
	$(VENV)/bin/relayrl bench --suite device --out benchmarks/results $(ARGS)

# The chaos soak (issue 15): seeded, overlapping kills, restarts and network cuts, then the books checked.
# CHAOS_ALGO=a3c and CHAOS_TRANSPORT=gradients|trajectories run it on A3C.
# CHAOS_LEARNERS=2 runs the learner as 2 data-parallel ranks under torchrun, and adds rank kills.
CHAOS_SECONDS ?= 600
CHAOS_SEED    ?= 1
CHAOS_OUT     ?=# e.g. benchmarks/results/chaos-1.json: the figures as a results file, with provenance
chaos: $(STAMP)
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_SEED=$(CHAOS_SEED) CHAOS_OUT=$(CHAOS_OUT) $(PY) -m tests.e2e.chaos

# Mutation testing ([tool.mutmut] in pyproject.toml names the modules and the tests): about 3 minutes on 2 cores,
# not part of `make test`. MUTANTS='"relayrl.loss.*"' narrows it. Survivors and why
# each is equivalent or which test now kills it: docs/MUTATION.md.
# The scope (issue 22): the loss, returns, normalisation, the model's heads (acting, log-probabilities and
# entropy, the Gaussian, the critic; relayrl/heads.py's MultiDiscrete and MultiBinary heads; the statistics' fold,
# alone or across learner ranks), the collector's rollout and lives, the trainer's loss-and-backward and clip-and-step.
# (relayrl/distributions.py holds constants only: mutmut mutates functions.)
MUTANTS ?= 'relayrl.loss.*' 'relayrl.returns.*' 'relayrl.normalization.*' 'relayrl.heads.*' \
	'relayrl.model.*ActorCritic*act__mutmut_*' 'relayrl.model.x__fold*' \
	'relayrl.model.*log_prob_entropy*' 'relayrl.model.*_gaussian*' 'relayrl.model.*ActorCritic*value*' \
	'actor_service.collector.*collect__mutmut_*' 'actor_service.collector.*_lives*' \
	'learner_service.trainer.x_clip_and_step*' 'learner_service.trainer.x_update_from_rollouts*' \
	'learner_service.trainer.x_backward*' \
	'learner_service.trainer.x_apply_gradients*'
mutation: $(STAMP)
	$(PY) -m pip install -q -e '.[mutation]'
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run $(MUTANTS) $(ARGS)
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache mutants

-include deploy/deploy.mk
-include deploy/containers.mk
