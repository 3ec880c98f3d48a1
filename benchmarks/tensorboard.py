"""What writing the controller's figures into TensorBoard costs the step boundary.

At every step the daemon turns its metrics line into scalars (curriculum_figures.step_figures) and
the session writes them into the run's event files (tensorboard_log.TensorboardLog.log_figures, one
event per step). Both run at the step boundary, so their time is controller time.

    python benchmarks/tensorboard.py                                # a synthetic 400-step tour (tests/synthetic_run.py)
    python benchmarks/tensorboard.py --metrics runs/tiny/metrics.jsonl   # the lines a real run wrote

Tunix's own figures go through the same backend (`log_scalar`, from jax.monitoring): TUNIX_TAGS
stands for what the e2e policy's run logs a step (the actor's 5, the completions' 3, 10 reward
figures), timed with the writing of the controller's, as the backend hands a step's values to
tensorboardX's writer thread as one event.

Prints the mean per step of each part over all the lines, --repeat times over (the writer's
thread drains its queue meanwhile, as in a run), and the event file's size per step.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.synthetic_run import full_tour  # noqa: E402

TUNIX_TAGS = [f"actor/train/{n}" for n in ("loss", "perplexity", "kl", "pg_clipfrac", "grad_norm")] + \
    [f"completions/train/{n}_length" for n in ("mean", "max", "min")] + [f"rewards/train/r{i}" for i in range(10)]

from autocurriculum.curriculum_figures import phase_order, step_figures  # noqa: E402
from autocurriculum.policy import expand_plan, load  # noqa: E402
from autocurriculum.tensorboard_log import TensorboardLog  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, help="a metrics.jsonl (default: a synthetic tour of policies/tiny.toml)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plan = expand_plan(load(REPO / "policies" / "tiny.toml"))
    if args.metrics:
        records = [json.loads(line) for line in args.metrics.read_text().splitlines()]
    else:
        records = json.loads(json.dumps(full_tour(load(REPO / "policies" / "tiny.toml"), plan), default=str))
    order = phase_order(plan)
    figures_seconds = write_seconds = 0.0
    count = 0
    with tempfile.TemporaryDirectory() as scratch:
        log = TensorboardLog()
        log.open(Path(scratch), first_step=1)
        for repeat in range(args.repeat):
            transitions = 0
            for index, record in enumerate(records):
                started = time.perf_counter()
                transitions += record["decision"]["action"] != "none"
                figures = step_figures(record, phase_index=order, transitions=transitions)
                made = time.perf_counter()
                step = repeat * len(records) + index + 1
                log.log_figures(step, figures)
                for tag in TUNIX_TAGS:
                    log.log_scalar(tag, np.float32(index), step=step)
                figures_seconds += made - started
                write_seconds += time.perf_counter() - made  # the figures and Tunix's, handed over once a step
                count += len(figures)
        log.finish()
        size = sum(path.stat().st_size for path in Path(scratch).iterdir())
    steps = args.repeat * len(records)
    print(f"{len(records)} lines x {args.repeat}: {count / steps:.0f} figures a step; "
          f"step_figures {figures_seconds / steps * 1e3:.3f} ms a step; writing them and Tunix's {len(TUNIX_TAGS)} "
          f"scalars {write_seconds / steps * 1e3:.3f} ms a step; "
          f"event file {size / steps:.0f} bytes a step")


if __name__ == "__main__":
    main()
