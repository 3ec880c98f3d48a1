"""Checkpoints that are whole or absent: model, optimizer, controller state and stream cursor together.

Layout under RUN_DIR/checkpoints/:

    step_00000040/
        model/           written by the model callback (Orbax: trainable params + optimizer state)
        state.json       daemon state: step, controller state, stream state, counters
        MANIFEST.json    size and sha256 of every other file, written last

A checkpoint is built in a hidden temporary directory, fsynced, and renamed into place, so a kill -9
or a full disk leaves either the previous checkpoints untouched or a complete new one; never a
half-written one under a real name. On resume the newest checkpoint whose manifest verifies is used;
a corrupt newest one is reported and skipped in favour of the previous good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from autocurriculum.coordination import Coordinator, SingleProcess
from autocurriculum.durable import fsync_tree
from autocurriculum.json_values import as_mapping

CHECKPOINTS = "checkpoints"
MANIFEST = "MANIFEST.json"
STATE = "state.json"
MODEL = "model"
_NAME = re.compile(r"^step_(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    def read_state(self) -> dict[str, object]:
        return dict(as_mapping(json.loads((self.path / STATE).read_text(encoding="utf-8"))))


_DISK_ERRORS = re.compile(r"No space left on device|File too large|Disk quota exceeded|Read-only file system")


def _cause(error: BaseException) -> str:
    """The part of an error a person needs: the disk condition when there is one, else the message."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    found = _DISK_ERRORS.search(text)
    return found.group(0) if found else f"{type(error).__name__}: {text[:300]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            yield path


class CheckpointStore:
    """Writes, lists, verifies and prunes the checkpoints of one run directory."""

    def __init__(self, run_dir: Path, keep: int, coordinator: Coordinator | None = None,
                 owner_pid: int | None = None) -> None:
        self.root = run_dir / CHECKPOINTS
        self.keep = max(1, keep)
        self.coordinator: Coordinator = coordinator or SingleProcess()
        self.owner_pid = owner_pid if owner_pid is not None else os.getpid()  # process 0's: names the staging copy

    def _final(self, step: int) -> Path:
        return self.root / f"step_{step:08d}"

    def _staging(self, step: int) -> Path:
        """Where checkpoint `step` is written before its rename: named by process 0's pid (this one's alone)."""
        return self.root / f".tmp-step_{step:08d}-{self.owner_pid}"

    def save(self, step: int, state: Mapping[str, object], save_model: Callable[[Path], None]) -> Checkpoint:
        """Write checkpoint `step` atomically; on any failure remove the partial copy and raise.

        With several processes every one calls this (Orbax writes each process's shards of the model
        into the same directory); process 0 alone prepares the staging copy, writes the daemon's state
        and the manifest and renames it into place, and tells the others whether that worked.
        """
        if self.coordinator.process_count > 1:
            return self._save_together(step, state, save_model)
        return self._save_alone(step, state, save_model)

    def _save_together(self, step: int, state: Mapping[str, object],
                       save_model: Callable[[Path], None]) -> Checkpoint:
        coordinator, primary = self.coordinator, self.coordinator.process_index == 0
        staging = self._staging(step)
        if primary:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        coordinator.barrier(f"checkpoint {step}: staging")
        try:
            save_model(staging / MODEL)
            model_error = ""
        except Exception as error:
            model_error = f"could not write checkpoint {staging}: {_cause(error)}"
        errors = [e.decode() for e in coordinator.all_gather(model_error.encode(), f"checkpoint {step}: model")]
        failure = next((e for e in errors if e), "")
        if primary:
            if failure:
                shutil.rmtree(staging, ignore_errors=True)
            else:
                try:
                    self._finish(step, state, staging)
                except CheckpointError as error:
                    failure = str(error)
        failure = coordinator.from_primary(failure.encode(), f"checkpoint {step}: finish").decode()
        if failure:
            raise CheckpointError(failure)
        return Checkpoint(step, self._final(step))

    def _finish(self, step: int, state: Mapping[str, object], staging: Path) -> None:
        """State, manifest, fsync, rename: the part after the model is written (process 0 alone)."""
        final = self._final(step)
        try:
            (staging / STATE).write_text(json.dumps(state, sort_keys=True, allow_nan=False), encoding="utf-8")
            manifest = {
                str(path.relative_to(staging)): {"size": path.stat().st_size, "sha256": _sha256(path)}
                for path in _files(staging)
            }
            (staging / MANIFEST).write_text(json.dumps({"step": step, "files": manifest}, sort_keys=True))
            fsync_tree(staging)
            if final.exists():  # a resumed run reaching the same step again: replace it whole
                shutil.rmtree(final)
            staging.rename(final)
            fsync_tree(self.root)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise CheckpointError(f"could not write checkpoint {final}: {_cause(error)}") from error
        self._prune()

    def _save_alone(self, step: int, state: Mapping[str, object], save_model: Callable[[Path], None]) -> Checkpoint:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self._staging(step)
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
            save_model(staging / MODEL)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            # Orbax reports a full disk as ValueError("OUT_OF_RANGE ... File too large"), not OSError
            raise CheckpointError(f"could not write checkpoint {self._final(step)}: {_cause(error)}") from error
        self._finish(step, state, staging)
        return Checkpoint(step, self._final(step))

    def all(self) -> list[Checkpoint]:
        """Every checkpoint under a real name, newest first (whether it verifies or not)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_dir():
                found.append(Checkpoint(int(match.group(1)), path))
        return sorted(found, key=lambda c: c.step, reverse=True)

    def verify(self, checkpoint: Checkpoint) -> str | None:
        """None when the checkpoint is whole, else a sentence saying what is wrong with it."""
        manifest_path = checkpoint.path / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files: dict[str, dict[str, object]] = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{manifest_path}: unreadable manifest ({error})"
        if STATE not in files:
            return f"{manifest_path}: no {STATE} listed"
        for name, expected in files.items():
            path = checkpoint.path / name
            if not path.is_file():
                return f"{path}: missing"
            if path.stat().st_size != expected.get("size"):
                return f"{path}: size {path.stat().st_size}, manifest says {expected.get('size')}"
            if _sha256(path) != expected.get("sha256"):
                return f"{path}: checksum does not match the manifest"
        return None

    def discard_after(self, step: int) -> list[Path]:
        """Remove checkpoints newer than `step` (a resumed run writes its own future)."""
        removed = []
        for checkpoint in self.all():
            if checkpoint.step > step:
                shutil.rmtree(checkpoint.path, ignore_errors=True)
                removed.append(checkpoint.path)
        return removed

    def _prune(self) -> None:
        for stale in self.all()[self.keep :]:
            shutil.rmtree(stale.path, ignore_errors=True)
        for leftover in self.root.glob(".tmp-step_*"):
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid != str(self.owner_pid):
                shutil.rmtree(leftover, ignore_errors=True)
