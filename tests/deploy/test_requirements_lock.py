"""deploy/docker/requirements.txt: the images' runtime lock must cover everything RelayRL needs at run
time (torch aside, which each Dockerfile pins from its own index) and satisfy every declared range.
`pip check` in the image build would catch a gap only when someone builds the image."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import DEPLOY

LOCK = DEPLOY / "docker" / "requirements.txt"
FROM_ITS_OWN_INDEX = {"torch"}
SLIM_ACTOR = "Dockerfile.actor"  # no torch at all: tests/deploy/test_slim_actor.py runs an actor without it


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{line!r}: pin an exact version"
            pins[canonicalize_name(name)] = version.strip()
    return pins


IMAGE_EXTRAS = {"atari"}  # the images run Atari too (ale-py ships its ROMs); no other extra is followed


def runtime_requirements() -> list[Requirement]:
    """RelayRL's requirements (with IMAGE_EXTRAS) and theirs, as installed here (markers evaluated)."""
    seen, todo, found = set(), ["relayrl"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            extras = IMAGE_EXTRAS if name == "relayrl" else set()
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
                continue
            found.append(req)
            todo.append(canonicalize_name(req.name))
    return found


def test_lock_is_complete_and_satisfies_every_range():
    pins = locked()
    requirements = runtime_requirements()
    needed = {canonicalize_name(r.name) for r in requirements} - FROM_ITS_OWN_INDEX
    assert needed == set(pins), f"missing: {sorted(needed - set(pins))}, not needed: {sorted(set(pins) - needed)}"
    for req in requirements:
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"


def test_dockerfiles_pin_the_same_torch_as_pyproject():
    (torch,) = [Requirement(r) for r in metadata.distribution("relayrl").requires if r.startswith("torch")]
    for dockerfile in (DEPLOY / "docker").glob("Dockerfile*"):
        if dockerfile.name == SLIM_ACTOR:
            assert "torch==" not in dockerfile.read_text(), "the slim actor image installs no torch"
        elif not dockerfile.name.endswith(".dockerignore"):
            assert f"torch{torch.specifier}" in dockerfile.read_text(), dockerfile.name
