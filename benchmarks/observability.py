"""What observability and operator control cost per training step, against the overhead anchor.

Anchor (issue 8): the whole controller (rewards + observations, decide, export, logging) costs under
2% of a step; the quickstart's steady GRPO step is 0.10-0.13 s (docs/design.md, "Facts the code
relies on"), so the whole controller has about 2 ms a step, and the pieces measured here must be a
small part of that:
  - Exporter.update(record), once per step;
  - ControlInbox.pending(), once per step, with an empty inbox and after 1,000 handled requests;
  - write_status(), once per step (atomic replace, not fsynced);
  - a Prometheus scrape (generate_latest), every scrape_interval (5 s), not per step.

    python benchmarks/observability.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autocurriculum import control  # noqa: E402
from autocurriculum.exporter import Exporter  # noqa: E402
from autocurriculum.override import Command  # noqa: E402
from autocurriculum.policy import expand_plan, load  # noqa: E402
from tests.synthetic_run import full_tour  # noqa: E402

STEP_SECONDS = 0.10  # the quickstart's fastest steady GRPO step (docs/design.md, "Facts the code relies on")
CONTROLLER_BUDGET = 0.02 * STEP_SECONDS  # issue 8: the whole controller under 2% of a step


def per_call(function: Callable[[], object], repeat: int) -> float:
    """Median over 5 rounds of the mean time per call."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        rounds.append((time.perf_counter() - started) / repeat)
    return statistics.median(rounds)


def report(name: str, seconds: float, anchor: str, share_of_budget: float | None) -> None:
    share = f"{share_of_budget:6.1%} of the 2 ms budget" if share_of_budget is not None else ""
    print(f"{name:<48} {seconds * 1e6:10.1f} us   {anchor:<28} {share}")


def main() -> None:
    policy = load(REPO / "policies" / "tiny.toml")
    plan = expand_plan(policy)
    records = full_tour(policy, plan)
    print(f"{'':48} {'measured':>13}   {'anchor':<28}")

    def replay() -> None:
        exporter = Exporter(CollectorRegistry(), policy, plan)
        for record in records:
            exporter.update(record)

    update = per_call(replay, 20) / len(records)
    report("Exporter.update, per step", update, "per step, budget 2 ms", update / CONTROLLER_BUDGET)

    registry = CollectorRegistry()
    Exporter(registry, policy, plan).replay(records)
    scrape = per_call(lambda: generate_latest(registry), 200)
    report("scrape (generate_latest), per scrape", scrape, "every 5 s, not per step", None)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        inbox = control.ControlInbox(run_dir)
        empty = per_call(lambda: inbox.pending(0), 500)
        report("ControlInbox.pending, empty inbox", empty, "per step, budget 2 ms", empty / CONTROLLER_BUDGET)
        for _ in range(1000):
            control.submit(run_dir, Command.HOLD, reason="benchmark")
        handled = per_call(lambda: inbox.pending(1000), 50)
        report("ControlInbox.pending, 1,000 handled, just written", handled, "per step, budget 2 ms",
               handled / CONTROLLER_BUDGET)
        settled = time.time() - 60  # as 2 s after the last request: the listing is reused
        os.utime(run_dir / "control" / "requests", (settled, settled))
        handled = per_call(lambda: inbox.pending(1000), 500)
        report("ControlInbox.pending, 1,000 handled, settled", handled, "per step, budget 2 ms",
               handled / CONTROLLER_BUDGET)
        status = {"step": 1, "phase": "behaviour", "criteria": records[-1]["criteria"], "plateau": records[-1]["plateau"]}
        write = per_call(lambda: control.write_status(run_dir, status), 50)
        report("write_status (atomic replace), per step", write, "per step, budget 2 ms", write / CONTROLLER_BUDGET)
        submit = per_call(lambda: control.submit(run_dir, Command.HOLD, reason="benchmark"), 50)
        report("submit (ctl), per request", submit, "operator command, not per step", None)


if __name__ == "__main__":
    main()
