"""A few recent completions per phase, kept so a person can read what the model writes now.

The metrics log holds roll-ups only (rates, lengths, rewards): enough for the controller, not for
a person asking "what does the model actually say in phase 2?". The daemon keeps the first few
completions of every step's first batch, with the fields the contract parsed out of them, and
rewrites RUN_DIR/completions.json at each step boundary. It is bounded by construction: at most
`per_phase` rows for each phase, each text cut to a fixed length, so a run of a million steps
writes the same few kilobytes as a run of ten. The run report (report.py) reads it.

Pure: no Tunix, no JAX; the daemon hands in texts and the step's records.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from autocurriculum.contract import parse_fields
from autocurriculum.observation import RecordBatch

COMPLETIONS_FILE = "completions.json"
PER_STEP = 2  # completions taken from each step (the first of its first GRPO group)
PER_PHASE = 6  # the most recent rows kept for each phase
MAX_TEXT_CHARS = 600  # a rambling completion is cut here (the cut is marked)


def _cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


class CompletionSamples:
    """The last `per_phase` sampled completions of each phase, oldest first."""

    def __init__(self, per_phase: int = PER_PHASE, per_step: int = PER_STEP) -> None:
        self.per_phase = per_phase
        self.per_step = per_step
        self.phases: dict[str, deque[dict[str, object]]] = {}

    def take(self, step: int, phase: str, part: str, prompts: Sequence[object], completions: Sequence[object],
             records: RecordBatch) -> None:
        """Keep the first `per_step` completions of a batch with what the contract and rewards made of them.

        `records` are the dispatcher's records of the same completions, in the same order.
        """
        rows = self.phases.setdefault(phase, deque(maxlen=self.per_phase))
        for index in range(min(self.per_step, len(completions), len(records))):
            text = str(completions[index])
            _, answer, reasoning, _, _, _, empty = parse_fields(text)
            record = records[index]
            rows.append({
                "step": step,
                "phase": phase,
                "part": part,
                "domain": record.domain,
                "prompt": _cut(str(prompts[index]) if index < len(prompts) else ""),
                "completion": _cut(text),
                "answer": answer,
                "reasoning": None if reasoning is None else _cut(reasoning.strip(), 300),
                "contract_ok": record.contract_ok,
                "extracted": record.extracted,
                "refused": record.refused,
                "correct": record.correct,
                "rambling": record.rambling,
                "empty": empty,
                "length_tokens": record.length_tokens,
                # JSON has no NaN: a non-finite reward (an alert of its own) is kept as its name, "nan"
                "rewards": {name: round(value, 4) if math.isfinite(value) else str(value)
                            for name, value in record.rewards.items()},
            })

    def to_json(self) -> dict[str, object]:
        return {"per_phase": self.per_phase, "phases": {name: list(rows) for name, rows in self.phases.items()}}

    def save(self, run_dir: Path) -> None:
        """Replace the file atomically: a reader (the report) never sees half of it."""
        path = run_dir / COMPLETIONS_FILE
        tmp = path.with_name(f".{COMPLETIONS_FILE}.tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False, allow_nan=False), encoding="utf-8")
        os.replace(tmp, path)

    def restore(self, run_dir: Path, up_to_step: int) -> None:
        """Reload the rows of steps <= `up_to_step` (a resume replays the later steps and samples them anew)."""
        for name, rows in read(run_dir).items():
            kept = [row for row in rows if int(row.get("step", 0)) <= up_to_step]  # type: ignore[call-overload]
            self.phases[name] = deque(kept[-self.per_phase:], maxlen=self.per_phase)


def read(run_dir: Path) -> dict[str, list[dict[str, object]]]:
    """The sampled completions per phase; empty when the run has none (an older run, or no step yet)."""
    try:
        data = json.loads((run_dir / COMPLETIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    phases = data.get("phases") if isinstance(data, dict) else None
    return {str(k): [r for r in v if isinstance(r, dict)] for k, v in phases.items()
            if isinstance(v, list)} if isinstance(phases, dict) else {}
