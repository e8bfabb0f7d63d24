#!/bin/sh
# The Python packages `make bench-device` needs that the lent GPU machine's image lacks, as wheels for its
# Python 3.12 in .whl/ (git-ignored), for the device tool to carry (benchmarks/README.md, "On the lent
# H200"). The image already holds torch, numpy, OpenCV, pandas, matplotlib, cloudpickle, typing-extensions and
# nvidia-ml-py; these are pinned to what pyproject.toml and this checkout's stubs were made with.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    gymnasium==1.4.0 farama-notifications==0.0.6 ale-py==0.12.1 stable-baselines3==2.9.2 \
    grpcio==1.85.3 grpcio-health-checking==1.85.1 protobuf==7.36.2 tensorboardX==2.6.5
git rev-parse HEAD > .whl/COMMIT 2>/dev/null || true  # the device's copy may have no git history
du -sh .whl
