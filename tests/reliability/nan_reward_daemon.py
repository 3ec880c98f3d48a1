"""`autocurriculum run ...` with one reward function poisoned: it returns NaN for its first N batches.

A fault injector for tests/reliability: the daemon, Tunix and the controller are the real ones; only
`rewards.reward_column` is wrapped, so the chosen reward's whole column is NaN for the first N
training batches (Tunix sums reward functions with nansum, so the others still train the model).

    python tests/reliability/nan_reward_daemon.py REWARD N run POLICY [--set ...]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping

from autocurriculum import cli, rewards


def poison(reward: str, batches: int) -> None:
    original = rewards.reward_column
    seen = 0

    def reward_column(name: str, params: Mapping[str, float], parsed, correct, domains=None) -> list[float]:
        nonlocal seen
        column = original(name, params, parsed, correct, domains)
        if name != reward:
            return column
        seen += 1
        return [math.nan] * len(column) if seen <= batches else column

    rewards.reward_column = reward_column


if __name__ == "__main__":
    poison(sys.argv[1], int(sys.argv[2]))
    sys.exit(cli.main(sys.argv[3:]))
