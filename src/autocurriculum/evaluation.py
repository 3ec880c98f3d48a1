"""Held-out evaluation: the same fixed items, greedy and at the training temperature.

Training rollouts are sampled, noisy and drawn from the training data; the held-out view uses items
never trained on (GSM8K test, the generated sources' test split), always the same ones in the same
order with the same seeds, so figures are comparable between steps and between runs. Greedy figures
feed the controller (criteria with `source = "eval"`); both are logged and exported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from autocurriculum.observation import CompletionRecord, StepObservation, summarize

EVAL_SEED = 1234  # fixed: the sampled evaluation draws the same keys in every run


def evaluate_items(session, dispatcher, items: Sequence, temperature: float, step: int) -> tuple[StepObservation, list[dict[str, object]]]:
    """Generate one completion per held-out item and roll the records up (one "group" per item)."""
    prompts = [item.prompt for item in items]
    completions = session.generate(prompts, temperature=temperature, seed=EVAL_SEED)
    records: list[CompletionRecord] = dispatcher.observe(
        completions, [item.answer for item in items], [item.domain for item in items])
    rows = [
        {
            "id": item.id, "domain": item.domain, "prompt": item.prompt, "completion": completion, "gold": item.answer,
            "contract_ok": record.contract_ok, "extracted": record.extracted, "refused": record.refused,
            "correct": record.correct, "length_tokens": record.length_tokens,
        }
        for item, completion, record in zip(items, completions, records)
    ]
    return summarize(step, records, group_size=1), rows


def evaluate_session(daemon, step: int) -> StepObservation:
    """Evaluate the running daemon's actor; log both decodings; return the greedy figures."""
    from autocurriculum import logs, runlog

    items = daemon.library.heldout()
    greedy, _ = evaluate_items(daemon.session, daemon.dispatcher, items, 0.0, step)
    sampled, _ = evaluate_items(daemon.session, daemon.dispatcher, items, daemon.policy.training.temperature, step)
    runlog.append_line(daemon.run_dir / runlog.EVAL_LOG, {
        "step": step, "items": len(items), "greedy": greedy.to_json(), "sampled": sampled.to_json(),
    })
    daemon.log.info(logs.EVALUATED, step=step, items=len(items),
                    greedy={k: round(v, 4) for k, v in greedy.metrics.items()},
                    sampled={k: round(v, 4) for k, v in sampled.metrics.items()})
    return greedy


def write_jsonl(path: Path, rows: Sequence[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
