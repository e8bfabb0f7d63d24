# Opt-in: the deploy artifacts in real containers (podman), included by the top-level Makefile
# (`-include deploy/containers.mk`). Not part of `make test`: it takes minutes and about 1.5 GB of images.
#   make test-containers         stand-in base image, build the CPU image, Compose (learner + 2 actors) over
#                                podman's Docker API, kube play of the actor Deployment, clean shutdown
#   make test-containers-clean   remove what it leaves for the next run (images, the stand-in's rootfs)
# Needs root (or sudo) and apt-get on first use; TORCH_WHEELS=DIR names a folder holding the pinned torch
# CPU wheel when the PyTorch CPU index cannot be reached (default /opt/wheels). See deploy/tools/test-containers.sh.

CT_WORK ?= /var/tmp/relayrl-containers

.PHONY: test-containers test-containers-clean

test-containers: $(STAMP)
	CT_WORK=$(CT_WORK) bash deploy/tools/test-containers.sh

test-containers-clean:
	-podman rmi $(RELAYRL_IMAGE) $(RELAYRL_ACTOR_IMAGE) python:3.11-slim-bookworm
	-podman image prune -f
	rm -rf $(CT_WORK)
