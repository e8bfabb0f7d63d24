#!/usr/bin/env bash
# Record the digests of pushed images (run by `make push-images` / `push-images-cuda`): for each image named
# on the command line (REGISTRY/NAME:TAG), the engine's RepoDigests entry for that repository, written as
# REGISTRY/NAME@sha256:... into deploy/images/digests.txt (one line per repository, replacing an older line).
# `make k8s-run` pins the run's images to these digests: a tag can be pushed again, a digest cannot change.
# DOCKER names the engine's CLI (docker by default; podman works too).
set -euo pipefail
DOCKER=${DOCKER:-docker}
out="$(dirname "$0")/../images/digests.txt"
touch "$out"
for image in "$@"; do
  repository=${image%:*}
  digest=$("$DOCKER" image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$image" \
           | grep -F "$repository@sha256:" | head -n 1 || true)
  if [ -z "$digest" ]; then
    echo "record-digests: $image has no digest for $repository (pushed?)" >&2
    exit 1
  fi
  { grep -v -F "$repository@" "$out" || true; echo "$digest"; } > "$out.new"
  mv "$out.new" "$out"
  echo "recorded $digest"
done
