"""Controller overhead: mean GRPO step time with and without the controller, in one run.

Anchor (issue 8): the controller (rewards + observations, decide, export, logging) costs under 2%
of a step. "Without" is a bare Tunix GRPO loop on the same cached quickstart base, data and
settings, with a minimal format reward; "with" is the full daemon. Each is timed at steady state
(after the first steps, which compile). The daemon also measures its own time per step, printed
as a second, direct figure.

    python benchmarks/overhead.py [--steps 80]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WARMUP = 10


def bare_loop(policy, steps: int) -> list[float]:
    from autocurriculum.data import to_tunix_batch
    from autocurriculum.wiring import build_run

    parts = build_run(policy, log=lambda *a, **k: None)
    strict = re.compile(r"^\s*<reasoning>.*?</reasoning>\s*<answer>.+?</answer>\s*$", re.S)

    def format_reward(prompts, completions, **kwargs):
        return [0.5 if strict.match(c) else -1.0 for c in completions]

    parts.trainer.set_reward_fns([format_reward])  # the bare loop: no dispatcher, no observations
    stamps: list[float] = []

    def batches():
        for number in range(1, steps + 1):
            stamps.append(time.perf_counter())
            parts.trainer.set_batch_number(number)
            yield to_tunix_batch(parts.stream.next_batch(policy.training.prompts_per_step))
        stamps.append(time.perf_counter())

    parts.trainer.train(batches())
    return list(np.diff(stamps))[WARMUP:]


def daemon_run(policy, steps: int) -> tuple[list[float], list[float]]:
    from autocurriculum import logs
    from autocurriculum.daemon import RunOptions, run_daemon

    logs.configure(json=True, level=40)  # errors only: the benchmark's output stays readable
    with tempfile.TemporaryDirectory() as tmp:
        run_daemon(policy, Path(tmp) / "run", RunOptions(max_steps=steps, handle_signals=True))
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()][WARMUP:]
    return [r["step_seconds"] for r in rows], [r["controller_seconds"] for r in rows]


def main() -> None:
    from autocurriculum.policy import load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    policy = load(REPO / "policies" / "tiny.toml", overrides=[
        "metrics.port=0", "eval.every=0", f"run.checkpoint_every={args.steps}"])
    bare_first = bare_loop(policy, args.steps)
    with_controller, controller_own = daemon_run(policy, args.steps)
    bare_second = bare_loop(policy, args.steps)
    bare = bare_first + bare_second
    mean_bare, mean_with = statistics.mean(bare), statistics.mean(with_controller)
    own = statistics.mean(controller_own)
    print(f"steady-state steps timed: bare {len(bare)} (two runs around the daemon), daemon {len(with_controller)}")
    print(f"{'':38s}{'measured':>12s}   anchor")
    print(f"{'mean step, bare Tunix GRPO loop':38s}{mean_bare:11.4f}s")
    print(f"{'mean step, with the controller':38s}{mean_with:11.4f}s")
    print(f"{'difference (with - bare) / bare':38s}{100 * (mean_with - mean_bare) / mean_bare:11.2f}%   < 2%")
    print(f"{'controller time per step (measured)':38s}{own * 1000:10.2f}ms")
    print(f"{'controller share of a step':38s}{100 * own / mean_with:11.2f}%   < 2%")


if __name__ == "__main__":
    main()
