"""Curriculum benchmark: does the automatic controller beat the usual ways of scheduling a run?

Anchor (issue 9): on the CPU quickstart setup, the same step budget under four regimes, five
training seeds each, in two difficulty regimes, with the spread shown:

    auto   the automatic controller (the product, policies/tiny.toml as it is)
    fixed  a fixed schedule: the same single-factor plan, switched at preset steps (the budget split
           in equal thirds per phase; part "a" of phase 2 gets judgement.settle_steps), no gates
    none   no curriculum: phase-2 rewards and the full (phase-3) mixture from step 0
    both   the controller, but phase 1 -> 2 swaps data AND rewards in one switch (what the
           curriculum document forbids)

    easy    generated one-step arithmetic (numbers 0-10) on the quickstart's warm-started base
    sparse  two-step arithmetic on a weaker base (400 warm-start steps, 5% of them in the
            contract), so the base is rarely compliant and rarely right: sparse reward signal

Every run of one difficulty shares the data (run.data_seed = 0) and one cached base; only run.seed
(data order and sampling keys) changes. Each regime runs in its own process through the real
daemon: a small `Daemon` subclass swaps the plan, keeps training to the budget after the terminal
phase's criteria held (so all regimes train the same number of steps), applies a move's data and
rewards together, and evaluates the held-out set (32 items per domain, greedy) at the end.

    python benchmarks/curriculum.py [--budget 200] [--seeds 5] [--jobs 1] [--difficulty easy sparse]

Runs already finished in --out are reused (the benchmark resumes after an interruption). Prints a
markdown table per difficulty and writes docs/curriculum-benchmark.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "policies" / "tiny.toml"
REGIMES = ("auto", "fixed", "none", "both")
DIFFICULTIES: dict[str, tuple[str, ...]] = {
    "easy": (),
    "sparse": (
        "sources.arithmetic.options.steps=2",
        "sources.arithmetic_test.options.steps=2",
        "model.warm_start.steps=400",
        "model.warm_start.contract_share=0.05",
        "model.warm_start.freeform_share=0.85",
        "training.max_prompt_tokens=96",  # two-step questions are longer
        "training.max_new_tokens=64",
    ),
}
PHASE1 = {"extraction_rate": (">=", 0.95), "refusal_rate": ("<=", 0.02)}  # tiny.toml's phase-1 criteria
ROLLING = 10  # tiny.toml's metrics.window
FINAL_METRICS = ("extraction_rate", "strict_compliance", "refusal_rate", "domain_accuracy:math",
                 "domain_compliance:math", "domain_compliance:code", "domain_compliance:qa")


# ---------------------------------------------------------------- the regimes (one child process each)


def regime_plan(regime: str, policy: Any, plan: tuple, budget: int) -> tuple:
    """The plan a regime runs: the product's own plan, or the ablation built from it."""
    from autocurriculum.policy import BudgetAction, ExitGate, Factor

    if regime == "auto":
        return plan
    if regime == "both":  # merge each split transition ("a" then "b") into one step changing both
        merged = [step for step in plan if step.part != "a"]
        return tuple(replace(step, index=i, part="", changes=Factor.DATA if i else Factor.NONE)
                     for i, step in enumerate(merged))
    if regime == "none":
        last = plan[-1]
        return (replace(plan[0], mixture=last.mixture, rewards=last.rewards, exit_gate=ExitGate.TERMINAL,
                        criteria=(), plateau=(), max_steps=budget),)
    if regime == "fixed":
        third = budget // len(policy.phases)
        settle = policy.judgement.settle_steps
        steps = []
        for step in plan:
            if step.exit_gate is ExitGate.TERMINAL:
                length = budget
            elif step.part == "a":
                length = settle
            elif step.part == "b":
                length = third - settle
            else:
                length = third
            gate = ExitGate.TERMINAL if step.exit_gate is ExitGate.TERMINAL else ExitGate.PHASE_CRITERIA
            steps.append(replace(step, exit_gate=gate, criteria=(), plateau=(), max_steps=length,
                                 on_budget_exhausted=BudgetAction.ADVANCE))
        return tuple(steps)
    raise ValueError(f"unknown regime {regime!r} (choose from {', '.join(REGIMES)})")


def run_child(regime: str, difficulty: str, seed: int, budget: int, out: Path, checkpoint_every: int = 0) -> int:
    """One run, in this process, through the real daemon."""
    from autocurriculum import evaluation, logs
    from autocurriculum.controller import ActionKind
    from autocurriculum.daemon import Daemon
    from autocurriculum.policy import expand_plan, load

    overrides = [*DIFFICULTIES[difficulty], f"run.seed={seed}", "run.data_seed=0", f"run.max_steps={budget}",
                 f"run.checkpoint_every={checkpoint_every or budget}", "metrics.port=0", "eval.every=0"]
    policy = load(POLICY, overrides)
    if regime in ("fixed", "none"):  # no gates, so no guards and no rollbacks either
        policy = replace(policy, judgement=replace(policy.judgement, guards=()))

    class BenchmarkDaemon(Daemon):
        terminal_done_at: int | None = None

        def _start_fresh(self) -> None:
            super()._start_fresh()
            if regime == "fixed":  # a fixed schedule enters phase 3 on time, whatever phase 1 reached
                self.state = replace(self.state, phase1_done=True)

        def _apply(self, decision) -> None:
            action = decision.action
            if action.kind is ActionKind.DONE:  # keep training to the budget: same steps for every regime
                self.terminal_done_at = self.terminal_done_at or self.step
                return
            if action.kind is ActionKind.RESTORE:  # a lasting collapse: the daemon's own restore
                super()._apply(decision)
                return
            if action.from_step == action.to_step:
                return
            source, target = self.plan[action.from_step], self.plan[action.to_step]
            if target.mixture != source.mixture:
                self.stream.set_mixture(target.mixture)
            if target.rewards != source.rewards:
                self.trainer.set_reward_fns(self.dispatcher.reward_fns(target.rewards))

        def _train(self) -> int:
            code = super()._train()
            evaluation.evaluate_session(self.trainer, self.dispatcher, self.library.heldout(),
                                        temperature=self.policy.training.temperature, step=self.step,
                                        run_dir=self.run_dir, log=self.log)
            return code

    logs.configure(json=True, stream=sys.stderr)
    daemon = BenchmarkDaemon(policy, out, resume=False, overrides=overrides)
    daemon.plan = regime_plan(regime, policy, expand_plan(policy), budget)
    started = time.monotonic()
    code = daemon.run(handle_signals=True)
    (out / "child.json").write_text(json.dumps({
        "exit_code": code, "wall_seconds": time.monotonic() - started, "terminal_done_at": daemon.terminal_done_at,
        "plan": [step.label for step in daemon.plan],
    }))
    return code


# ---------------------------------------------------------------- reading one finished run


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rolling(values: list[float | None], width: int = ROLLING) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(values)):
        seen = [v for v in values[max(0, i + 1 - width): i + 1] if v is not None]
        out.append(sum(seen) / len(seen) if seen else None)
    return out


def summarize_run(out: Path) -> dict[str, Any]:
    """The figures of one run: from its metrics log, transitions log and final held-out evaluation."""
    child = json.loads((out / "child.json").read_text())
    records = _lines(out / "metrics.jsonl")
    metric = lambda name: [r["observation"]["metrics"].get(name) for r in records]  # noqa: E731
    rolled = {name: _rolling(metric(name)) for name in PHASE1}
    phase1_at = None
    for i, record in enumerate(records):
        if i + 1 < ROLLING:
            continue
        if all(v is not None and (v >= t if op == ">=" else v <= t)
               for name, (op, t) in PHASE1.items() for v in [rolled[name][i]]):
            phase1_at = record["step"]
            break
    math_accuracy = [r["observation"]["metrics"].get("domain_accuracy:math", r["observation"]["metrics"].get("accuracy"))
                     for r in records]
    final = _lines(out / "eval.jsonl")[-1]
    return {
        "exit_code": child["exit_code"],
        "steps": len(records),
        "wall_seconds": child["wall_seconds"],
        "train_seconds": records[-1]["time"] - records[0]["time"] + records[0]["step_seconds"] if records else 0.0,
        "phase1_at": phase1_at,
        "terminal_done_at": child["terminal_done_at"],
        "switches": [[t["step"], t["action"], t["to_phase"]] for t in _lines(out / "transitions.jsonl")],
        "final": {name: final["greedy"]["metrics"].get(name) for name in FINAL_METRICS},
        "final_sampled_math_accuracy": final["sampled"]["metrics"].get("domain_accuracy:math"),
        "curves": {
            "strict_compliance": _rolling(metric("strict_compliance")),
            "math_accuracy": _rolling(math_accuracy),
            "extraction_rate": rolled["extraction_rate"],
        },
        "start": {"strict_compliance": rolled_first(metric("strict_compliance")),
                  "math_accuracy": rolled_first(math_accuracy)},
    }


def rolled_first(values: list[float | None]) -> float | None:
    """The base's rollout figure: the mean of the first ROLLING steps (before training moved much)."""
    seen = [v for v in values[:ROLLING] if v is not None]
    return sum(seen) / len(seen) if seen else None


# ---------------------------------------------------------------- the table and the plot


def _spread(values: list[float | None], digits: int = 2) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    mean = statistics.fmean(got)
    sd = statistics.stdev(got) if len(got) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def table(difficulty: str, runs: dict[str, list[dict[str, Any]]]) -> str:
    head = ("| regime | phase-1 criteria reached (step: median [min-max]) | strict compliance | extraction | refusal "
            "| math accuracy | code compliance | QA compliance | wall time per run |")
    rows = [f"**{difficulty}**", "", head, "|" + "---|" * 9]
    for regime in REGIMES:
        got = runs.get(regime, [])
        if not got:
            continue
        reached = sorted(r["phase1_at"] for r in got if r["phase1_at"] is not None)
        phase1 = (f"{len(reached)}/{len(got)} runs: {statistics.median(reached):.0f} [{reached[0]}-{reached[-1]}]"
                  if reached else f"0/{len(got)} runs")
        finals = lambda name: [r["final"][name] for r in got]  # noqa: E731
        rows.append(f"| {regime} | {phase1} | {_spread(finals('strict_compliance'))} | {_spread(finals('extraction_rate'))} "
                    f"| {_spread(finals('refusal_rate'))} | {_spread(finals('domain_accuracy:math'))} "
                    f"| {_spread(finals('domain_compliance:code'))} | {_spread(finals('domain_compliance:qa'))} "
                    f"| {statistics.fmean(r['wall_seconds'] for r in got):.0f} s |")
    base = [r["start"] for rs in runs.values() for r in rs]
    rows.append("")
    rows.append(f"Base, first {ROLLING} rollout steps of every run: strict compliance "
                f"{_spread([b['strict_compliance'] for b in base])}, math accuracy {_spread([b['math_accuracy'] for b in base])}.")
    return "\n".join(rows)


def plot(results: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    difficulties = list(results)
    panels = (("strict_compliance", "strict compliance (rollouts, rolling 10)"),
              ("math_accuracy", "math accuracy inside the contract (rollouts, rolling 10)"))
    fig, axes = plt.subplots(len(difficulties), len(panels), figsize=(12, 3.6 * len(difficulties)), squeeze=False)
    colours = dict(zip(REGIMES, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for row, difficulty in enumerate(difficulties):
        for col, (key, title) in enumerate(panels):
            ax = axes[row][col]
            for regime, runs in results[difficulty].items():
                curves = [[np.nan if v is None else v for v in r["curves"][key]] for r in runs]
                length = min(len(c) for c in curves)
                data = np.array([c[:length] for c in curves])
                steps = np.arange(1, length + 1)
                ax.plot(steps, np.nanmean(data, axis=0), color=colours[regime], label=f"{regime} (mean of {len(runs)})")
                ax.fill_between(steps, np.nanmin(data, axis=0), np.nanmax(data, axis=0), color=colours[regime], alpha=0.12)
                for r in runs if regime == "auto" else ():
                    for step, action, _ in r["switches"]:
                        if action.startswith("swap"):
                            ax.axvline(step, color=colours[regime], alpha=0.15, linewidth=0.8)
            ax.set_title(f"{difficulty}: {title}", fontsize=10)
            ax.set_xlabel("GRPO step")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Curriculum regimes on the CPU quickstart (band: min-max over seeds; thin lines: auto's switches)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---------------------------------------------------------------- the driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=200, help="GRPO steps per run (default 200)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--difficulty", nargs="+", default=list(DIFFICULTIES), choices=list(DIFFICULTIES))
    parser.add_argument("--regime", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmark-curriculum")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "curriculum-benchmark")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="steps between checkpoints, which a collapse restore needs (default: only at the end)")
    parser.add_argument("--child", nargs=3, metavar=("REGIME", "DIFFICULTY", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        regime, difficulty, seed = args.child
        return run_child(regime, difficulty, int(seed), args.budget, args.out, args.checkpoint_every)

    todo = []
    for seed in range(args.seeds):  # seed-major: an interrupted benchmark still covers every regime
        for difficulty in args.difficulty:
            for regime in args.regime:
                out = args.out / f"{difficulty}-{regime}-{seed}"
                if not (out / "child.json").exists():
                    todo.append((regime, difficulty, seed, out))
    running: list[tuple[subprocess.Popen, tuple]] = []
    started = time.monotonic()
    def base_missing(difficulty: str) -> bool:  # no run of this difficulty finished: its base may not be cached
        return not any((args.out / f"{difficulty}-{r}-{s}" / "child.json").exists()
                       for r in REGIMES for s in range(args.seeds))

    while todo or running:
        while todo and len(running) < args.jobs:
            if base_missing(todo[0][1]) and running:  # the first run of a difficulty builds the base alone
                break
            regime, difficulty, seed, out = job = todo.pop(0)
            out.mkdir(parents=True, exist_ok=True)
            log = open(out / "output.log", "w")
            command = [sys.executable, __file__, "--child", regime, difficulty, str(seed), "--budget", str(args.budget),
                       "--out", str(out), "--checkpoint-every", str(args.checkpoint_every)]
            running.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()), job))
            print(f"[{time.monotonic() - started:6.0f} s] started {difficulty} {regime} seed {seed}", flush=True)
        for process, job in list(running):
            if process.poll() is not None:
                running.remove((process, job))
                print(f"[{time.monotonic() - started:6.0f} s] finished {job[1]} {job[0]} seed {job[2]}: "
                      f"exit {process.returncode}", flush=True)
        time.sleep(1.0)

    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for difficulty in args.difficulty:
        results[difficulty] = {}
        for regime in args.regime:
            runs = []
            for seed in range(args.seeds):
                out = args.out / f"{difficulty}-{regime}-{seed}"
                try:
                    runs.append({"seed": seed, **summarize_run(out)})
                except (OSError, KeyError, IndexError, ValueError) as error:
                    print(f"{out}: no result ({type(error).__name__}: {error}); see {out / 'output.log'}")
            if runs:
                results[difficulty][regime] = runs
    print(f"\n{args.budget} GRPO steps per run, {args.seeds} seeds (run.seed 0-{args.seeds - 1}, data_seed 0)\n")
    for difficulty, runs in results.items():
        print(table(difficulty, runs) + "\n")
        for regime, got in runs.items():
            switches = "; ".join(f"seed {r['seed']}: " + ", ".join(f"{s[0]}" for s in r["switches"]) for r in got)
            print(f"  {regime} switch steps: {switches}")
        print()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    compact = {d: {g: [{k: v for k, v in r.items() if k != "curves"} for r in rs] for g, rs in runs.items()}
               for d, runs in results.items()}
    args.report.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "seeds": args.seeds,
                                                            "results": compact}, indent=1))
    plot(results, args.report.with_suffix(".png"))
    print(f"wrote {args.report.with_suffix('.json')} and {args.report.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
