"""How big the run report is and how long it takes to write, against its anchor.

Anchor (issue 20): the report of a 200-step run is under about 2 MB and written in under a second,
so a notebook can redraw it every few steps and the daemon can refresh it (metrics.report_every)
without a person waiting for it.

    python benchmarks/report.py                    # a synthetic 200-step run (tests/synthetic_run.py)
    python benchmarks/report.py --run-dir runs/x   # any run directory the daemon wrote

The synthetic run has the shape and every kind of event of a real one (real summarize() and
decide(): switches, a hold, operator requests, a rollback, held-out evaluations every 10 steps)
and a full completion sample; only the model is imaginary. Each figure is the median of --repeat
writes in this process (matplotlib already imported, as in the daemon and a notebook); the first
write, which pays for the imports, is printed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autocurriculum import completion_samples, report, runlog  # noqa: E402
from autocurriculum.observation import RecordBatch  # noqa: E402
from autocurriculum.policy import expand_plan, load  # noqa: E402
from tests.synthetic_run import synthetic_run, transition_line  # noqa: E402

ANCHOR_BYTES = 2_000_000
ANCHOR_SECONDS = 1.0


def synthetic_run_dir(directory: Path, steps: int) -> Path:
    """A run directory of `steps` steps written as the daemon writes it (the curriculum kept from ending)."""
    from autocurriculum.override import Command, OperatorRequest

    policy = load(REPO / "policies" / "tiny.toml")
    plan = expand_plan(policy)
    requests = {30: [OperatorRequest(1, Command.HOLD, reason="look at lengths")],
                40: [OperatorRequest(2, Command.RESUME, reason="fine")]}

    def skill(number: int) -> float:  # a dip (a rollback), then good enough for phases 1-2, never phase 3's criteria
        if 60 <= number < 80:
            return 0.3
        return min(0.99, 0.5 + number / 60) if number < 110 else 0.7

    records = synthetic_run(policy, plan, steps, requests=requests, skill=skill)
    samples = completion_samples.CompletionSamples()
    previous = 0
    for record in records:
        runlog.append_line(directory / runlog.METRICS_LOG, record)
        transition = transition_line(record, plan, previous)
        if transition is not None:
            runlog.append_line(directory / runlog.TRANSITIONS_LOG, transition)
        if record["eval"]:
            runlog.append_line(directory / runlog.EVAL_LOG, {"step": record["step"], "items": 96,
                                                             "greedy": record["eval"], "sampled": record["eval"]})
        text = "<reasoning>" + "Tom has 7 apples and gives 3 away, so he has 7 - 3 = 4 left. " * 6 + \
               "</reasoning><answer>4</answer>"
        batch = RecordBatch(["math"] * 2, [True] * 2, [True] * 2, [False] * 2, [60] * 2, [False] * 2, [True] * 2,
                            [False] * 2, [False] * 2, [0] * 2, {"strict_format_gate": [0.5] * 2})
        samples.take(record["step"], plan[previous].phase, plan[previous].part, ["Tom has 7 apples ..."] * 2,
                     [text] * 2, batch)
        previous = record["plan_step"]
    samples.save(directory)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", help="a run directory (default: a synthetic run of --steps steps)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(args.run_dir) if args.run_dir else synthetic_run_dir(Path(scratch), args.steps)
        out = Path(scratch) / "report.html"
        steps = len(list(runlog.read_lines(run_dir / runlog.METRICS_LOG)))
        transitions = len(list(runlog.read_lines(run_dir / runlog.TRANSITIONS_LOG)))
        started = time.perf_counter()
        report.write_report(run_dir, out)
        first = time.perf_counter() - started
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            report.write_report(run_dir, out)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        size = out.stat().st_size
    load = os.getloadavg()[0]
    print(f"run: {run_dir if args.run_dir else 'synthetic'}, {steps} steps, {transitions} transitions; "
          f"load average {load:.2f} on {os.cpu_count()} cores")
    print(f"report size      {size / 1e6:8.3f} MB     anchor < {ANCHOR_BYTES / 1e6:.0f} MB   "
          f"{'met' if size < ANCHOR_BYTES else 'MISSED'}")
    print(f"write, wall      {statistics.median(walls):8.3f} s      anchor < {ANCHOR_SECONDS:.0f} s    "
          f"{'met' if statistics.median(walls) < ANCHOR_SECONDS else 'MISSED'}   "
          f"(median of {args.repeat}; min {min(walls):.3f} s, max {max(walls):.3f} s)")
    print(f"write, CPU       {statistics.median(cpus):8.3f} s      (this process's CPU time, less sensitive to load)")
    print(f"first write      {first:8.3f} s      (imports matplotlib's SVG backend and fonts)")


if __name__ == "__main__":
    main()
