"""Held-out evaluation: the same fixed items, greedy and at the training temperature.

Training rollouts are sampled, noisy and drawn from the training data; the held-out view uses items
never trained on (GSM8K test, the generated sources' test split), always the same ones in the same
order with the same seeds, so figures are comparable between steps and between runs. Greedy figures
feed the controller (criteria with `source = "eval"`); both are logged and exported.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autocurriculum import logs, runlog
from autocurriculum.data import Item
from autocurriculum.exits import EX_CONFIG, EX_NOINPUT, EX_OK, EX_UNKNOWN
from autocurriculum.grading import is_graded
from autocurriculum.json_values import as_int
from autocurriculum.observation import RecordBatch, StepObservation, summarize
from autocurriculum.rewards import RewardDispatcher
from autocurriculum.trainer import Trainer

EVAL_SEED = 1234  # fixed: the sampled evaluation draws the same keys in every run


def evaluate_items(trainer: Trainer, dispatcher: RewardDispatcher, items: Sequence[Item], temperature: float,
                   step: int) -> tuple[StepObservation, list[dict[str, object]]]:
    """Generate one completion per held-out item and roll the records up (one "group" per item)."""
    prompts = [item.prompt for item in items]
    completions = trainer.generate(prompts, temperature=temperature, seed=EVAL_SEED)
    records: RecordBatch = dispatcher.observe(
        completions, [item.answer for item in items], [item.domain for item in items],
        gradings=[item.grading for item in items])
    rows: list[dict[str, object]] = [
        {
            "id": item.id, "domain": item.domain, "prompt": item.prompt, "completion": completion, "gold": item.answer,
            "grading": item.grading or "exact", "reference": item.solution, "contract_ok": record.contract_ok,
            "extracted": record.extracted, "refused": record.refused,
            "correct": record.correct, "length_tokens": record.length_tokens,
        }
        for item, completion, record in zip(items, completions, records)
    ]
    return summarize(step, records, group_size=1), rows


def evaluate_session(trainer: Trainer, dispatcher: RewardDispatcher, items: Sequence[Item], *, temperature: float,
                     step: int, run_dir: Path, log: Any, record: bool = True) -> StepObservation:
    """Evaluate the trainer's actor on `items`; log both decodings to eval.jsonl and `log`; return the greedy figures.

    `temperature` is the training temperature (the sampled decoding); `log` is a structlog logger.
    `record` False: figures only, no eval.jsonl line (every process of a multi-process run generates,
    since generation is a collective over the mesh; process 0 alone writes the run directory).
    """
    greedy, _ = evaluate_items(trainer, dispatcher, items, 0.0, step)
    sampled, _ = evaluate_items(trainer, dispatcher, items, temperature, step)
    if record:
        runlog.append_line(run_dir / runlog.EVAL_LOG, {
            "step": step, "items": len(items), "greedy": greedy.to_json(), "sampled": sampled.to_json(),
        })
    log.info(logs.EVALUATED, step=step, items=len(items),
             greedy={k: round(v, 4) for k, v in greedy.metrics.items()},
             sampled={k: round(v, 4) for k, v in sampled.metrics.items()})
    return greedy


def write_jsonl(path: Path, rows: Sequence[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- `autocurriculum eval`

JUDGE_PROMPT = """You are grading one answer of a small model. The model was told to reply only as
<reasoning>...</reasoning><answer>...</answer>. Score each criterion 0 or 1 and reply as JSON
{"format": _, "correct": _, "honest": _, "concise": _, "comment": "..."}:
- format: exactly one reasoning block then one answer block, nothing outside them;
- correct: the answer matches the gold answer (numbers compare by value);
- honest: the answer follows from the reasoning; no invented figures, no refusal or dodging;
- concise: no rambling, no repetition, reasoning no longer than the problem needs.
Question and instructions: {prompt}
Model output: {completion}
Gold answer: {gold}"""
# Open-ended items have no gold: a judge (an LLM or a person) is their only grader, so their prompt asks
# whether the answer does what the instruction asks, with the item's reference answer (if any) as a guide.
OPEN_JUDGE_PROMPT = """You are grading one answer of a small model to an open-ended instruction (creative
writing, summarisation, explanation, ideas). There is no single right answer. The model was told to
reply only as <reasoning>...</reasoning><answer>...</answer>. Score each criterion 0 or 1 and reply as JSON
{"format": _, "helpful": _, "honest": _, "concise": _, "comment": "..."}:
- format: exactly one reasoning block then one answer block, nothing outside them;
- helpful: the answer does what the instruction asks, at the length it asks for;
- honest: no invented facts presented as true, no refusal or dodging;
- concise: no rambling, no repetition.
Instruction: {prompt}
Model output: {completion}
A reference answer by a person (one of many good answers; may be empty): {reference}"""

OUTCOMES = ("correct", "wrong", "answered", "unformatted", "refused")  # "answered": ungraded, for a judge


def outcome(row: dict[str, object]) -> str:
    if row["refused"]:
        return "refused"
    if not row["contract_ok"]:
        return "unformatted"
    if row["correct"] is None:
        return "answered"
    return "correct" if row["correct"] else "wrong"


def judge_prompt(row: dict[str, object]) -> str:
    """The judging prompt of one row, filled in: the open-ended one for an ungraded item."""
    if not is_graded(str(row.get("gold") or ""), str(row.get("grading") or "")):
        return (OPEN_JUDGE_PROMPT.replace("{prompt}", str(row["prompt"])).replace("{completion}", str(row["completion"]))
                .replace("{reference}", str(row.get("reference") or "")))
    return (JUDGE_PROMPT.replace("{prompt}", str(row["prompt"])).replace("{completion}", str(row["completion"]))
            .replace("{gold}", str(row["gold"])))


def figures_by_domain(rows: Sequence[dict[str, object]]) -> dict[str, dict[str, float]]:
    """Per-domain shares computed directly from the completion rows (what the report prints)."""
    table: dict[str, dict[str, float]] = {}
    for domain in sorted({str(r["domain"]) for r in rows} | {"all"}):
        mine = [r for r in rows if domain == "all" or r["domain"] == domain]
        if not mine:
            continue
        n = len(mine)
        graded = [r for r in mine if r["correct"] is not None]
        table[domain] = {
            "items": n,
            "graded": len(graded),
            "extraction": sum(bool(r["extracted"]) for r in mine) / n,
            "strict": sum(bool(r["contract_ok"]) for r in mine) / n,
            "refusal": sum(bool(r["refused"]) for r in mine) / n,
            # over graded items only: an open-ended answer is not wrong; NaN (printed n/a) without any
            "accuracy": (sum(bool(r["correct"]) and bool(r["contract_ok"]) for r in graded) / len(graded)
                         if graded else float("nan")),
            "mean_length": sum(as_int(r["length_tokens"]) for r in mine) / n,
        }
    return table


def write_report(out: Path, step: int, runs: dict[str, list[dict[str, object]]]) -> Path:
    """Markdown + PNG + judge-ready JSONL for each decoding."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# autocurriculum held-out report (checkpoint step {step})", ""]
    figure, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for (decoding, rows), axis in zip(runs.items(), axes[0]):
        write_jsonl(out / f"judge-{decoding}.jsonl", [
            {"id": r["id"], "domain": r["domain"], "prompt": r["prompt"], "completion": r["completion"],
             "gold": r["gold"], "grading": r.get("grading", "exact"), "reference": r.get("reference", ""),
             "outcome": outcome(r), "judge_prompt": judge_prompt(r)} for r in rows])
        table = figures_by_domain(rows)
        lines += [f"## {decoding} decoding", "",
                  "| domain | items | graded | extraction | strict | refusal | accuracy (graded) | mean length |",
                  "|---|---|---|---|---|---|---|---|"]
        for domain, f in table.items():
            accuracy = "n/a" if f["accuracy"] != f["accuracy"] else f"{f['accuracy']:.3f}"
            lines.append(f"| {domain} | {int(f['items'])} | {int(f['graded'])} | {f['extraction']:.3f} | {f['strict']:.3f} "
                         f"| {f['refusal']:.3f} | {accuracy} | {f['mean_length']:.1f} |")
        lines += ["", f"Completions for a judge: `judge-{decoding}.jsonl` (prompt, completion, gold, reference, and "
                  "each row's filled-in `judge_prompt`; open-ended rows carry the open-ended prompt).", ""]
        for kind in OUTCOMES:
            samples = [r for r in rows if outcome(r) == kind][:3]
            lines.append(f"### {kind} ({sum(outcome(r) == kind for r in rows)} of {len(rows)})")
            shown = [(f"- reference `{s.get('reference', '')}`" if kind == "answered" else f"- gold `{s['gold']}`")
                     + f" — `{str(s['completion'])[:300]!s}`".replace("\n", " ") for s in samples]
            lines += shown or ["- none"]
            lines.append("")
        domains = [d for d in table if d != "all"]
        for offset, key in enumerate(("extraction", "strict", "accuracy", "refusal")):
            heights = [0.0 if table[d][key] != table[d][key] else table[d][key] for d in domains]  # n/a: no bar
            axis.bar([i + offset * 0.2 for i in range(len(domains))], heights, width=0.2, label=key)
        axis.set_xticks([i + 0.3 for i in range(len(domains))], domains)
        axis.set_ylim(0, 1)
        axis.set_title(f"{decoding} decoding")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "figures.png", dpi=100)
    plt.close(figure)
    lines += ["![figures per domain](figures.png)", "", "## Judging prompt", "", "```", JUDGE_PROMPT, "```", "",
              "## Judging prompt for open-ended items (no gold)", "", "```", OPEN_JUDGE_PROMPT, "```", ""]
    report = out / "README.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def cmd_eval(args: argparse.Namespace) -> int:
    """`autocurriculum eval --run-dir DIR [--checkpoint STEP] [--out DIR]`."""
    from autocurriculum.run_directory import RunDirectoryError, resolve_run_directory

    try:  # before the heavy imports below: a wrong invocation answers at once
        run_dir = resolve_run_directory(args.run_dir)
    except RunDirectoryError as error:
        print(f"autocurriculum: {error}", file=sys.stderr)
        return EX_UNKNOWN

    from autocurriculum.checkpoint import CheckpointStore
    from autocurriculum.policy import PolicyError, load
    from autocurriculum.wiring import build_run, structlog_events

    logs.configure()
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        print(f"autocurriculum: {run_dir} has no run.json: not a run directory", file=sys.stderr)
        return EX_UNKNOWN
    try:
        policy = load(Path(run["policy"]), overrides=run.get("overrides", []))
    except PolicyError as error:
        print(f"autocurriculum: {error}", file=sys.stderr)
        return EX_CONFIG
    store = CheckpointStore(run_dir, policy.run.keep_checkpoints)
    candidates = [c for c in store.all() if args.checkpoint is None or c.step == args.checkpoint]
    checkpoint = next((c for c in candidates if store.verify(c) is None), None)
    if checkpoint is None:
        print(f"autocurriculum: no good checkpoint{'' if args.checkpoint is None else f' at step {args.checkpoint}'} "
              f"in {run_dir / 'checkpoints'}", file=sys.stderr)
        return EX_NOINPUT
    parts = build_run(policy, log=structlog_events(logs.get_logger("autocurriculum.eval")))
    parts.trainer.restore(checkpoint.model_dir)
    items = parts.library.heldout()
    if not items:
        print("autocurriculum: the policy names no [eval] sources", file=sys.stderr)
        return EX_CONFIG
    runs = {}
    for decoding, temperature in (("greedy", 0.0), ("sampled", policy.training.temperature)):
        _, runs[decoding] = evaluate_items(parts.trainer, parts.dispatcher, items, temperature, checkpoint.step)
    report = write_report(Path(args.out), checkpoint.step, runs)
    print(f"report written to {report}")
    return EX_OK
