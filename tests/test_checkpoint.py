"""The checkpoint store: whole or absent, verified on read, the previous good one on corruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocurriculum.checkpoint import CheckpointError, CheckpointStore


def write_model(content: bytes):
    def save(directory: Path) -> None:
        directory.mkdir()
        (directory / "weights.bin").write_bytes(content)

    return save


def test_save_writes_state_model_and_a_manifest_that_verifies(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    checkpoint = store.save(10, {"step": 10, "controller": {"plan_step": 1}}, write_model(b"abc"))
    assert checkpoint.path.name == "step_00000010"
    assert checkpoint.read_state() == {"step": 10, "controller": {"plan_step": 1}}
    assert (checkpoint.model_dir / "weights.bin").read_bytes() == b"abc"
    manifest = json.loads((checkpoint.path / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"state.json", "model/weights.bin"}
    assert store.verify(checkpoint) is None


def test_all_lists_newest_first_and_prunes_beyond_keep(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for step in (5, 10, 15):
        store.save(step, {"step": step}, write_model(bytes([step])))
    assert [c.step for c in store.all()] == [15, 10]


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda c: (c.model_dir / "weights.bin").write_bytes(b"abd"), "checksum does not match"),
        (lambda c: (c.model_dir / "weights.bin").write_bytes(b"abcdef"), "size 6, manifest says 3"),
        (lambda c: (c.model_dir / "weights.bin").unlink(), "missing"),
        (lambda c: (c.path / "MANIFEST.json").write_text("{not json"), "unreadable manifest"),
        (lambda c: (c.path / "MANIFEST.json").unlink(), "unreadable manifest"),
        (lambda c: (c.path / "state.json").write_text('{"step": 99}'), "state.json"),
    ],
)
def test_verify_names_what_is_wrong(tmp_path: Path, damage, expected: str) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    checkpoint = store.save(7, {"step": 7}, write_model(b"abc"))
    damage(checkpoint)
    problem = store.verify(checkpoint)
    assert problem is not None and expected in problem


def test_a_failing_model_save_leaves_no_checkpoint_and_keeps_the_previous(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    store.save(5, {"step": 5}, write_model(b"good"))

    def full_disk(directory: Path) -> None:
        directory.mkdir()
        (directory / "part").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError, match="No space left on device"):
        store.save(10, {"step": 10}, full_disk)
    assert [c.step for c in store.all()] == [5]
    assert store.verify(store.all()[0]) is None
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_state_that_is_not_json_serialisable_fails_without_leftovers(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    with pytest.raises(CheckpointError, match="not JSON compliant"):
        store.save(3, {"step": float("nan")}, write_model(b"x"))
    assert store.all() == []


def test_discard_after_removes_only_newer_checkpoints(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=5)
    for step in (5, 10, 15):
        store.save(step, {"step": step}, write_model(b"m"))
    removed = store.discard_after(10)
    assert [p.name for p in removed] == ["step_00000015"]
    assert [c.step for c in store.all()] == [10, 5]
