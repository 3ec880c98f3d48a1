"""Read TensorBoard event files back with TensorBoard's own reader (what `tensorboard --logdir` loads)."""

from __future__ import annotations

from pathlib import Path


def scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value), ...] in file order, as TensorBoard shows them (events a restart purged left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})  # 0: keep every event
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def steps(series: list[tuple[int, float]]) -> list[int]:
    return [step for step, _ in series]
