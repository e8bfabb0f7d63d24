"""Checkpoints are atomic, pruned to K, and a corrupted newest one falls back to an older good one."""

import pytest
import torch

from learner_service import checkpoints


def state(version):
    return {"model": {"w": torch.full((2,), float(version))}, "version": version}


def test_save_keeps_the_newest_k(tmp_path):
    for v in (1, 2, 3, 4):
        checkpoints.save(tmp_path, state(v), keep=2)
    names = [p.name for p in checkpoints.list_checkpoints(tmp_path)]
    assert names == ["ckpt-000000000004.pt", "ckpt-000000000003.pt"]
    assert not list(tmp_path.glob(".tmp-*"))


def test_corrupted_newest_falls_back(tmp_path, caplog):
    checkpoints.save(tmp_path, state(1), keep=3)
    newest = checkpoints.save(tmp_path, state(2), keep=3)
    newest.write_bytes(newest.read_bytes()[:40])  # truncated on disk
    path, loaded = checkpoints.load_latest(tmp_path)
    assert loaded["version"] == 1 and path.name == "ckpt-000000000001.pt"
    assert "unreadable" in caplog.text
    assert newest.exists(), "a broken checkpoint is reported, never deleted"


def test_nothing_usable(tmp_path):
    assert checkpoints.load_latest(tmp_path / "missing") is None
    (tmp_path / "ckpt-000000000009.pt").write_bytes(b"garbage")
    assert checkpoints.load_latest(tmp_path) is None


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot be pickled")


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path):
    good = checkpoints.save(tmp_path, state(5), keep=3)
    before = good.read_bytes()
    bad = {"model": {"w": torch.zeros(1)}, "version": 5, "oops": Unpicklable()}  # fails half-way through pickling
    with pytest.raises(RuntimeError, match="cannot be pickled"):  # the failure reaches the caller, never swallowed
        checkpoints.save(tmp_path, bad, keep=3)
    assert checkpoints.list_checkpoints(tmp_path) == [good]
    assert good.read_bytes() == before
    assert not list(tmp_path.glob(".tmp-*"))
