"""What grading code by its tests costs inside the reward call: one sandbox call per batch.

Code items (`grading = "tests"`) are graded at every training step, inside the reward pass, so the
sandbox's cost is paid per step: one isolated interpreter per batch plus one forked child per distinct
program (data/execution.run_tests). This prints the wall time of a batch of 1, 8 and 32 distinct
passing programs (the median of --rounds), and of one infinite loop (cut by the 1 s CPU limit).

    PYTHONPATH=src python benchmarks/sandbox.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from autocurriculum.data.execution import run_tests

TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nassert add(0, 0) == 0"


def programs(count: int, salt: int) -> list[tuple[str, str]]:
    """`count` distinct right programs (a comment makes each distinct: nothing is cached across calls anyway)."""
    return [(f"def add(a, b):\n    # {salt}-{i}\n    return a + b", TESTS) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for count in (1, 8, 32):
        seconds = []
        for round_index in range(args.rounds):
            started = time.perf_counter()
            verdicts = run_tests(programs(count, round_index))
            seconds.append(time.perf_counter() - started)
            assert all(verdicts), verdicts
        median = statistics.median(seconds)
        print(f"{count:>2} distinct programs: {median * 1000:.0f} ms a batch, {median / count * 1000:.1f} ms a program")
    started = time.perf_counter()
    verdict = run_tests([("def add(a, b):\n    while True:\n        pass", TESTS)])
    print(f"one infinite loop: {time.perf_counter() - started:.2f} s, verdict {verdict}")


if __name__ == "__main__":
    main()
