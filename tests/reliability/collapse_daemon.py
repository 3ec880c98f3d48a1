"""`autocurriculum run ...` whose model seems to collapse: batches FIRST..LAST are scored as empty completions.

A fault injector for tests/reliability: the daemon, Tunix and the controller are the real ones; only
`RewardDispatcher._score` is wrapped, so the records and rewards of those training batches are those
of a model that emits nothing (every reward in a group equal: GRPO learns nothing from them, as from
a real collapse). The controller sees the collapse alert, and the daemon restores a checkpoint.

    python tests/reliability/collapse_daemon.py FIRST LAST run POLICY [--set ...]
"""

from __future__ import annotations

import sys

from autocurriculum import cli
from autocurriculum.rewards import RewardDispatcher


def collapse(first: int, last: int) -> None:
    original = RewardDispatcher._score
    seen = 0

    def score(self, active, completions, answers, domains, *rest, **keywords):  # type: ignore[no-untyped-def]
        nonlocal seen
        seen += 1
        if first <= seen <= last:
            completions = [""] * len(completions)
        return original(self, active, completions, answers, domains, *rest, **keywords)

    RewardDispatcher._score = score  # type: ignore[method-assign]


if __name__ == "__main__":
    collapse(int(sys.argv[1]), int(sys.argv[2]))
    sys.exit(cli.main(sys.argv[3:]))
