#!/usr/bin/env bash
# `make test-containers` (opt-in; minutes, about 1.5 GB of images): the deploy artifacts in real containers.
#
#   1. a stand-in for the Dockerfiles' base image (no registry can be pulled from here): Debian bookworm from
#      debootstrap with python3, tagged as the base the Dockerfile names, made to behave like it (`python`,
#      `pip`, pip may install into the system Python);
#   2. the CPU image built from deploy/docker/Dockerfile and the slim actor image from Dockerfile.actor,
#      unchanged, with podman, named as deploy/images/images.env says (through Compose); sizes printed; the
#      slim one must hold no torch. The PyTorch CPU index may be unreachable: the stand-in's /etc/pip.conf
#      also looks in /wheels, and the build mounts TORCH_WHEELS (a folder holding the pinned torch CPU
#      wheel) there; with the index reachable pip takes it from there;
#   3. the real Compose binary over podman's Docker API: learner + 2 slim actor replicas healthy, training
#      (the learner's published /metrics), `compose stop` exits 0 everywhere with a final checkpoint that
#      is in the named volume after `down`;
#   4. `podman kube play` of the rendered actor Deployment (deploy/k8s/base) joined to Compose's network,
#      with its token Secret: its pods run as the manifest says (UID 10001, read-only root, writable /tmp),
#      pass the grpc probe's check, are counted by the learner, and stop with exit code 0;
#   5. a run's life: run `first` with a stop target finishes (learner and actors exit 0 and stay stopped),
#      started again it refuses to resume (exit 2), and run `second` trains beside first's untouched
#      checkpoints in the same volume.
# Podman workarounds from shared/TOOLING.md: runc instead of crun, explicit ulimits, healthchecks run by
# this script (no systemd timers), CMD-SHELL healthchecks (already in compose.yaml).
#
# Environment: TORCH_WHEELS (default /opt/wheels), CT_WORK (default /var/tmp/relayrl-containers: the
# stand-in's rootfs, logs), DEBIAN_MIRROR, KEEP=1 (leave the Compose project up for a look).
# Exit codes: 0 all checks passed, 1 a check failed, 3 this machine cannot run it (the reason is printed).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
WORK=${CT_WORK:-/var/tmp/relayrl-containers}
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY=$REPO/.venv/bin/python
DOCKERFILE=deploy/docker/Dockerfile
ACTOR_DOCKERFILE=deploy/docker/Dockerfile.actor
PROJECT=relayrl-test                   # the Compose project: its own network, volume and container names
ACTOR_REPLICAS=2
DEB_PACKAGES="podman runc buildah catatonit debootstrap containernetworking-plugins
  golang-github-containernetworking-plugin-dnsname slirp4netns uidmap fuse-overlayfs iptables"

say() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
cannot() { printf '\ncannot run here: %s\n' "$*" >&2; exit 3; }

# poll SECONDS WHAT COMMAND...: run COMMAND every second until it succeeds; fail naming WHAT at the deadline.
poll() {
    local seconds=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${seconds}s waiting for $what"
        sleep 1
    done
}

# ---------------------------------------------------------------------------------------------------------
say "tools"
[ "$(uname -s)" = Linux ] || cannot "podman containers need Linux"
[ -x "$PY" ] && [ -x "$REPO/.venv/bin/docker-compose" ] && [ -x "$REPO/.venv/bin/kubectl" ] \
    || cannot "no .venv with the deploy tools: run \`make deploy-tools\` first"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for tool in podman runc catatonit debootstrap; do command -v "$tool" >/dev/null || missing=1; done
if [ -n "$missing" ]; then
    command -v apt-get >/dev/null || cannot "podman, runc, catatonit, debootstrap missing and no apt-get to install them"
    echo "   installing: $(echo $DEB_PACKAGES)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $DEB_PACKAGES >/dev/null
fi
ok "$(podman --version)"
mkdir -p "$WORK"
# crun fails on this kernel's hybrid cgroups; the default ulimits need CAP_SYS_RESOURCE (shared/TOOLING.md).
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$WORK/containers.conf

# What the repository says: the base image, the pinned torch, the image Compose runs.
BASE=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$DOCKERFILE")
TORCH=$(grep -o 'torch==[0-9.]*' "$DOCKERFILE" | head -1 | cut -d= -f3)
# Compose names the images from deploy/images/images.env (its .env): the learner's and the actors'.
compose_image() {
    "$REPO/.venv/bin/docker-compose" -f deploy/compose/compose.yaml config --format json \
        | "$PY" -c "import json, sys; print(json.load(sys.stdin)['services']['$1']['image'])"
}
IMAGE=$(compose_image learner)
ACTOR_IMAGE=$(compose_image actor)
case "$BASE" in
    python:3.11-*bookworm) ;;
    *) cannot "the stand-in base is Debian bookworm's Python 3.11; $DOCKERFILE now starts FROM $BASE" ;;
esac
ls "$TORCH_WHEELS"/torch-"$TORCH"+cpu-cp311-*.whl >/dev/null 2>&1 \
    || cannot "no torch $TORCH CPU wheel for Python 3.11 in TORCH_WHEELS=$TORCH_WHEELS (the PyTorch CPU index is often unreachable)"
ok "base $BASE, torch $TORCH, images $IMAGE, $ACTOR_IMAGE"

# ---------------------------------------------------------------------------------------------------------
say "stand-in base image $BASE"
if podman image exists "$BASE"; then
    ok "already there"
else
    ROOTFS=$WORK/rootfs-bookworm
    if [ ! -f "$ROOTFS/.relayrl-stand-in" ]; then
        rm -rf "$ROOTFS"
        echo "   debootstrap bookworm (about 2 minutes)"
        debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$ROOTFS" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
            || fail "debootstrap failed, see $WORK/debootstrap.log"
        # Behave like python:3.11-slim: `python` and `pip` on PATH, pip may install into the system Python.
        ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"
        ln -sf /usr/bin/pip3 "$ROOTFS/usr/local/bin/pip"
        rm -f "$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED
        # Trust what this host trusts (PyPI may be reached through an inspecting proxy), and let pip find
        # the torch wheel the build mounts at /wheels.
        cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\nfind-links = /wheels\n' >"$ROOTFS/etc/pip.conf"
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* \
            "$ROOTFS"/usr/share/man/*
        touch "$ROOTFS/.relayrl-stand-in"
    fi
    tar -C "$ROOTFS" --exclude=./.relayrl-stand-in -c . | podman import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "docker.io/library/$BASE" >"$WORK/import.log" 2>&1 \
        || fail "podman import failed, see $WORK/import.log"
    ok "imported"
fi

# ---------------------------------------------------------------------------------------------------------
say "build $IMAGE from $DOCKERFILE"
started=$SECONDS
podman build --pull=never -f "$DOCKERFILE" -v "$TORCH_WHEELS:/wheels:ro" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; fail "podman build failed, see $WORK/build.log"; }
ok "built in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=si) " \
   "(base $(podman image inspect --format '{{.Size}}' "$BASE" | numfmt --to=si))"

say "build $ACTOR_IMAGE from $ACTOR_DOCKERFILE"
started=$SECONDS
podman build --pull=never -f "$ACTOR_DOCKERFILE" -v "$TORCH_WHEELS:/wheels:ro" -t "$ACTOR_IMAGE" . \
    >"$WORK/build-actor.log" 2>&1 \
    || { tail -30 "$WORK/build-actor.log"; fail "podman build failed, see $WORK/build-actor.log"; }
ok "built in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$ACTOR_IMAGE" | numfmt --to=si)"
podman run --rm --entrypoint python "$ACTOR_IMAGE" -c \
    "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
    || fail "$ACTOR_IMAGE holds torch"
ok "no torch in $ACTOR_IMAGE"

# ---------------------------------------------------------------------------------------------------------
say "Compose over podman's Docker API"
for port in 50051 9400; do  # compose.yaml publishes these on 127.0.0.1
    "$PY" -c "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', $port))" 2>/dev/null \
        || cannot "127.0.0.1:$port is in use; Compose publishes the learner there"
done
SOCKET=$WORK/podman.sock
SERVICE_PID=""
HEALTH_PID=""
KUBE_YAML=$WORK/actor-deployment.yaml
rm -f "$SOCKET" "$KUBE_YAML"
export DOCKER_HOST=unix://$SOCKET COMPOSE_BAKE=false DOCKER_BUILDKIT=0
# A test-only override: the learner also answers to the Kubernetes Service's name, which `podman kube play`
# does not create, so the Deployment's unmodified ConfigMap (RELAYRL_LEARNER=relayrl-learner:50051) works.
cat >"$WORK/compose.override.yaml" <<'EOF'
services:
  learner:
    networks:
      default:
        aliases: [relayrl-learner]
EOF
COMPOSE=("$REPO/.venv/bin/docker-compose" -p "$PROJECT" -f deploy/compose/compose.yaml -f "$WORK/compose.override.yaml")
compose() { "${COMPOSE[@]}" "$@"; }

cleanup() {
    set +e
    if [ -f "$KUBE_YAML" ]; then podman kube down "$KUBE_YAML" >/dev/null 2>&1; fi
    podman secret rm relayrl-auth >/dev/null 2>&1
    if [ -n "$SERVICE_PID" ] && [ "${KEEP:-0}" != 1 ]; then compose down -v >/dev/null 2>&1; fi
    if [ -n "$HEALTH_PID" ]; then kill "$HEALTH_PID" 2>/dev/null; wait "$HEALTH_PID" 2>/dev/null; fi
    if [ -n "$SERVICE_PID" ] && [ "${KEEP:-0}" != 1 ]; then kill "$SERVICE_PID" 2>/dev/null; wait "$SERVICE_PID" 2>/dev/null; fi
}
trap cleanup EXIT

podman system service --time=0 "unix://$SOCKET" >"$WORK/podman-service.log" 2>&1 &
SERVICE_PID=$!
poll 30 "podman's API socket" test -S "$SOCKET"
compose down -v >/dev/null 2>&1 || true  # a clean slate: no volume (and checkpoint) from an earlier run
# No systemd timers here: run every project container's healthcheck every 2 s (as the engine would).
(
    while :; do
        for id in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
            podman healthcheck run "$id" >/dev/null 2>&1 || true
        done
        sleep 2
    done
) &
HEALTH_PID=$!

started=$SECONDS
# depends_on: service_healthy makes `up` wait for the learner's healthcheck before starting the actors.
timeout 300 "${COMPOSE[@]}" up -d --no-build >"$WORK/compose-up.log" 2>&1 || { cat "$WORK/compose-up.log"; fail "compose up"; }
LEARNER=$PROJECT-learner-1
health() { [ "$(podman inspect --format '{{.State.Health.Status}}' "$1")" = healthy ]; }
for i in $(seq 1 "$ACTOR_REPLICAS"); do
    poll 120 "$PROJECT-actor-$i healthy (welcomed by the learner)" health "$PROJECT-actor-$i"
done
ok "learner and $ACTOR_REPLICAS actors healthy $((SECONDS - started)) s after \`up\`"

metric() { curl -fsS http://127.0.0.1:9400/metrics | awk -v name="$1" '$1 == name { print $2 }'; }
metric_is() { [ "$("$PY" -c "print(float('$(metric "$1")') == $2)")" = True ]; }
metric_above() { [ "$("$PY" -c "print(float('$(metric "$1")' or 'nan') > $2)")" = True ]; }
poll 60 "relayrl_actors_connected == $ACTOR_REPLICAS" metric_is relayrl_actors_connected "$ACTOR_REPLICAS"
steps=$(metric relayrl_env_steps_total)
poll 60 "the env-step counter to rise above $steps" metric_above relayrl_env_steps_total "$steps"
ok "training: $(metric relayrl_env_steps_total) env steps, policy version $(metric relayrl_policy_version)," \
   "mean return $(metric relayrl_mean_return_100)"

# ---------------------------------------------------------------------------------------------------------
say "podman kube play: the rendered actor Deployment"
"$REPO/.venv/bin/kubectl" kustomize deploy/k8s/base >"$WORK/base.yaml"
# Objects as rendered, with one change: podman 4 publishes every containerPort on all host interfaces
# (Kubernetes publishes none), so replicas would collide on the host; ports are dropped from the copy.
KUBE_REPLICAS=$("$PY" - "$WORK" "$ACTOR_IMAGE" <<'EOF'
import sys
from pathlib import Path

import yaml

work, image = Path(sys.argv[1]), sys.argv[2]
objects = list(yaml.safe_load_all((work / "base.yaml").read_text()))
(deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "relayrl-actor"]
spec = deployment["spec"]["template"]["spec"]
for container in spec["containers"]:
    assert container["image"] == image, f"the Deployment runs {container['image']}, Compose {image}"
    container.pop("ports", None)
for o in objects:
    if o["kind"] == "ConfigMap":
        (work / f"configmap-{o['metadata']['name']}.yaml").write_text(yaml.safe_dump(o))
# The manifest may leave the count to whoever scales it (an autoscaler, kubectl scale): play two then.
deployment["spec"].setdefault("replicas", 2)
(work / "actor-deployment.yaml").write_text(yaml.safe_dump(deployment))
print(deployment["spec"]["replicas"])
EOF
)
configmaps=()
for f in "$WORK"/configmap-*.yaml; do configmaps+=(--configmap "$f"); done
# The token Secret the pods mount (make k8s-run creates it in a cluster): played first, as podman makes a
# podman secret of a Secret object, which the Deployment's secret volume then finds.
"$PY" - "$WORK/secret-relayrl-auth.yaml" <<'EOF'
import secrets, sys

import yaml

# stringData: podman 4.3 mounts a Secret's `data` values still base64-encoded
secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "relayrl-auth"},
          "stringData": {"token": secrets.token_hex(32)}}
open(sys.argv[1], "w").write(yaml.safe_dump(secret))
EOF
podman secret rm relayrl-auth >/dev/null 2>&1 || true
podman kube play "$WORK/secret-relayrl-auth.yaml" >"$WORK/kube-play-secret.log" 2>&1 \
    || { cat "$WORK/kube-play-secret.log"; fail "podman kube play of the token Secret"; }
podman kube play --network "${PROJECT}_default" "${configmaps[@]}" "$KUBE_YAML" >"$WORK/kube-play.log" 2>&1 \
    || { cat "$WORK/kube-play.log"; fail "podman kube play"; }
pods=$(podman pod ps --filter name=relayrl-actor-pod --format '{{.Name}}' | sort)
[ "$(echo "$pods" | wc -l)" -eq "$KUBE_REPLICAS" ] || fail "expected $KUBE_REPLICAS pods, got: $pods"
for pod in $pods; do
    ctr=$pod-actor
    # The Deployment's grpc probes, by hand: podman does not run grpc probes.
    poll 120 "$ctr's grpc health on 50052" podman exec "$ctr" grpc-health-check 127.0.0.1:50052
    [ "$(podman exec "$ctr" id -u)" = 10001 ] || fail "$ctr does not run as UID 10001"
    podman exec "$ctr" touch /probe 2>/dev/null && fail "$ctr's root filesystem is writable"
    podman exec "$ctr" touch /tmp/probe || fail "$ctr's /tmp (emptyDir) is not writable"
    podman logs "$ctr" 2>&1 | grep -q "connected to relayrl-learner:50051 as $pod " \
        || fail "$ctr did not connect as $pod (RELAYRL_ACTOR_ID from metadata.name)"
done
total=$((ACTOR_REPLICAS + KUBE_REPLICAS))
poll 60 "relayrl_actors_connected == $total" metric_is relayrl_actors_connected "$total"
ok "$KUBE_REPLICAS pods healthy as UID 10001 on a read-only root; the learner counts $total actors"
for pod in $pods; do
    podman pod stop -t 15 "$pod" >/dev/null
    code=$(podman inspect --format '{{.State.ExitCode}}' "$pod-actor")
    [ "$code" = 0 ] || fail "$pod-actor exited with $code on SIGTERM"
done
# podman 4.3 backs every replica's emptyDir `tmp` with one named volume and logs an error when the first pod's
# removal finds it still in use by the second: keep that out of the output and check the outcome instead.
podman kube down "$KUBE_YAML" >"$WORK/kube-down.log" 2>&1 || { cat "$WORK/kube-down.log"; fail "podman kube down"; }
rm -f "$KUBE_YAML"
[ -z "$(podman pod ps -q --filter name=relayrl-actor-pod)" ] || fail "actor pods left after podman kube down"
ok "pods stopped with exit code 0 and removed"

# ---------------------------------------------------------------------------------------------------------
say "compose stop, then down: exit codes and the final checkpoint"
compose stop >"$WORK/compose-stop.log" 2>&1 || { cat "$WORK/compose-stop.log"; fail "compose stop"; }
for ctr in "$LEARNER" $(for i in $(seq 1 "$ACTOR_REPLICAS"); do echo "$PROJECT-actor-$i"; done); do
    code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
    [ "$code" = 0 ] || { podman logs --tail 20 "$ctr"; fail "$ctr exited with $code on compose stop"; }
done
final=$(podman logs "$LEARNER" 2>&1 | grep -o 'final checkpoint [^ ]*' | tail -1 | awk '{print $3}')
[ -n "$final" ] || fail "the learner logged no final checkpoint"
ok "all exited 0; learner: final checkpoint $final"
compose down >/dev/null 2>&1
volume=$(podman volume inspect --format '{{.Mountpoint}}' "${PROJECT}_checkpoints")
# The run's own folder in the volume (RELAYRL_RUN_NAME=auto): /data/checkpoints/RUN/ckpt-....pt
kept=${final#/data/checkpoints/}
[ -f "$volume/$kept" ] || fail "$kept is not in the volume ${PROJECT}_checkpoints after down"
ok "$kept kept in the volume ${PROJECT}_checkpoints after \`down\`"

# ---------------------------------------------------------------------------------------------------------
say "a run's life: it finishes and stays down, is not resumed, and a new run starts beside it"
# The same project and volume, with a stop target and the run's name from the shell (a test-only override).
cat >"$WORK/compose.run.yaml" <<'EOF'
services:
  learner:
    environment:
      RELAYRL_RUN_NAME: ${RELAYRL_RUN_NAME:?}
      RELAYRL_MAX_ENV_STEPS: ${RELAYRL_MAX_ENV_STEPS:?}
EOF
RUN_COMPOSE=("${COMPOSE[@]}" -f "$WORK/compose.run.yaml")
state() { podman inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}' "$1"; }
stopped_with() { set -- "$1" "$2" "$(state "$1")"; [[ "$3" == "exited $2 "* ]]; }
files_of() { (cd "$volume/$1" && sha256sum -- * | sort); }

export RELAYRL_MAX_ENV_STEPS=20000  # run first: a target reached in seconds
RELAYRL_RUN_NAME=first timeout 300 "${RUN_COMPOSE[@]}" up -d --no-build >"$WORK/run-first.log" 2>&1 \
    || { cat "$WORK/run-first.log"; fail "compose up (run first)"; }
poll 300 "run first's learner to meet its target and exit 0" stopped_with "$LEARNER" 0
podman logs "$LEARNER" 2>&1 | grep -q "stopped: max_env_steps" || fail "run first did not stop at its target"
for i in $(seq 1 "$ACTOR_REPLICAS"); do
    poll 60 "$PROJECT-actor-$i to exit 0 (the run is over)" stopped_with "$PROJECT-actor-$i" 0
done
first=$(files_of first) && [ -n "$first" ] || fail "run first left no checkpoint in its folder"
ok "run first finished: learner and actors exited 0 and stay stopped (restart: on-failure)"

RELAYRL_RUN_NAME=first timeout 300 "${RUN_COMPOSE[@]}" up -d --no-build --force-recreate learner \
    >"$WORK/run-first-again.log" 2>&1 || { cat "$WORK/run-first-again.log"; fail "compose up (run first again)"; }
poll 120 "run first, started again, to refuse (exit 2)" stopped_with "$LEARNER" 2
podman logs "$LEARNER" 2>&1 | grep -q "finished (max_env_steps" || fail "the refusal does not say the run finished"
[ "$(files_of first)" = "$first" ] || fail "run first's checkpoints changed"
ok "run first is not resumed: exit 2, naming --resume-finished"

export RELAYRL_MAX_ENV_STEPS=1000000000  # run second: far off, so that it is still training when checked
RELAYRL_RUN_NAME=second timeout 300 "${RUN_COMPOSE[@]}" up -d --no-build --force-recreate \
    >"$WORK/run-second.log" 2>&1 || { cat "$WORK/run-second.log"; fail "compose up (run second)"; }
poll 120 "run second's learner healthy" health "$LEARNER"
poll 60 "run second's actors connected" metric_is relayrl_actors_connected "$ACTOR_REPLICAS"
poll 60 "run second to train" metric_above relayrl_updates_total 2
compose stop >/dev/null 2>&1 || fail "compose stop (run second)"
[ -n "$(files_of second)" ] || fail "run second left no checkpoint"
[ "$(files_of first)" = "$first" ] || fail "run first's checkpoints changed while run second trained"
ok "run second trained beside run first, whose checkpoints are untouched"
compose down >/dev/null 2>&1

say "PASS: images built ($IMAGE, slim $ACTOR_IMAGE), Compose learner + $ACTOR_REPLICAS actors trained, kube play actor pods, clean shutdown, a run finished, refused again and a new run started beside it"
