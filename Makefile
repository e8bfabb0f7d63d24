# RelayRL. `make run` trains CartPole-v1 on this machine; `make test` runs the suite.
# Both create .venv and install what they need on first use.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3

.PHONY: install run test lint proto bench bench-learning bench-hold bench-device chaos clean help

help:
	@echo "make run     train CartPole-v1 with A2C and 2 actor processes until solved"
	@echo "make test    run the test suite"
	@echo "make lint    ruff, and import-linter's layering contracts (pyproject.toml)"
	@echo "make proto   regenerate the Python stubs from proto/"
	@echo "make bench   the performance benchmark (see benchmarks/)"
	@echo "make bench-learning  the learning benchmark against rl-baselines3-zoo's A2C (hours; see benchmarks/)"
	@echo "make bench-device  the GPU learner on this machine in at most 8 minutes (ARGS=--quick: seconds, on the CPU)"
	@echo "make bench-hold  whether CartPole's solve holds at 1, 2, 8 actors x 16, 64, 256 envs (about 40 min)"
	@echo "make chaos   the chaos soak: faults together for CHAOS_SECONDS (600), seeded by CHAOS_SEED (1); see tests/e2e/chaos.py"
	@echo "make up / down / logs / k8s-apply / k8s-delete   deploy (see docs/DEPLOY.md)"
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
CHAOS_SECONDS ?= 600
CHAOS_SEED    ?= 1
chaos: $(STAMP)
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_SEED=$(CHAOS_SEED) $(PY) -m tests.e2e.chaos

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

-include deploy/deploy.mk
-include deploy/containers.mk
