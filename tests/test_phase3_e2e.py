"""Phase 3 on real Tunix GRPO: code items graded by their tests, and ungraded open-ended items.

The end-to-end policy with its phase-3 code and QA sources replaced by the MBPP-shaped fixture (graded
"tests") and generated open-ended prompts (no gold); the operator jumps the run to phase 3 as soon as
phase 1's criteria allow it, and six real GRPO steps there show the `grading` column reaching the reward
functions through Tunix (a probe reward, in every phase, reads it), NaN correctness summed away by Tunix
without a non-finite alarm, and the per-domain figures. (The tiny model writes no code that passes, so
the sandbox's verdicts are tested on the dispatcher itself: tests/test_grading.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from . import daemon_process as dp

pytestmark = pytest.mark.slow

PROBE = """def grading_probe(prompts, completions, **kwargs):
    return [1.0 if kind == "tests" else 0.0 for kind in kwargs.get("grading", [""] * len(completions))]
"""


def test_code_by_its_tests_and_open_ended_items_train_on_real_grpo(tmp_path: Path) -> None:
    data = dp.REPO / "tests" / "data" / "mbpp"
    (tmp_path / "probe.py").write_text(PROBE)
    probe = f'\n[[phases.rewards]]\nname = "grading_probe"\nfunction = "{tmp_path / "probe.py"}:grading_probe"\n'
    text = dp.E2E_POLICY.read_text().replace('cache_dir = "../../.cache/autocurriculum"',
                                             f'cache_dir = "{dp.REPO / ".cache" / "autocurriculum"}"')
    for old, new in (
        ('[sources.code]\nkind = "code"\ndomain = "code"\noptions = { count = 200 }',
         f'[sources.code]\nkind = "code_tests"\ndomain = "code"\npath = "{data}"'),
        ('[sources.qa]\nkind = "qa"\ndomain = "qa"', '[sources.qa]\nkind = "open"\ndomain = "open"'),
        ("domain_compliance:qa", "domain_compliance:open"),
        ('name = "light_length_penalty"\n', 'name = "light_length_penalty"\n' + probe),  # phase 1
        ('name = "penalize_length"\n', 'name = "penalize_length"\n' + probe),  # phases 2 and 3
    ):
        assert old in text
        text = text.replace(old, new)
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    run_dir = tmp_path / "run"
    process = dp.start(run_dir, "run.max_steps=200", "metrics.port=0", policy=policy)
    try:
        for step in range(1, 60):  # the operator may jump to phase 3 once phase 1's criteria have held
            dp.wait_for_steps(run_dir, step, process)
            jump = subprocess.run([sys.executable, "-m", "autocurriculum", "ctl", "set", "generalisation", "--reason",
                                   "test", "--run-dir", str(run_dir), "--wait", "300"], cwd=dp.REPO, timeout=330,
                                  capture_output=True, text=True)
            if jump.returncode == 0:
                break
            assert "criteria have not held yet" in jump.stdout, jump.stdout + jump.stderr
        else:
            raise AssertionError("phase 1's criteria never held")
        deadline_steps = len(dp.lines(run_dir / "metrics.jsonl")) + 6
        dp.wait_for_steps(run_dir, deadline_steps, process)
    finally:
        process.send_signal(signal.SIGTERM)
        assert dp.finish(process, 180) == 0, dp.log_of(run_dir)
    records = [r for r in dp.lines(run_dir / "metrics.jsonl") if r["phase"] == "generalisation"]
    assert len(records) >= 5
    for record in records:
        observation = record["observation"]
        metrics, counts = observation["metrics"], observation["domain_counts"]
        assert observation["nonfinite"] == 0  # NaN correctness of open-ended items is "not applicable"
        assert metrics["graded_completions"] == observation["completions"] - counts.get("open", 0)
        if counts.get("open"):
            assert metrics["graded_completions:open"] == 0 and "accuracy:open" not in metrics
            assert "strict_compliance:open" in metrics and "rambling_rate:open" in metrics
        if counts.get("code"):
            assert metrics["graded_completions:code"] == counts["code"] and "accuracy:code" in metrics
        # the probe earns 1 on a "tests" item: Tunix handed the reward functions the item's grading column
        assert observation["reward_means"]["grading_probe"] == counts.get("code", 0) / observation["completions"]
    assert any(r["observation"]["domain_counts"].get("code") for r in records)
    assert any(r["observation"]["domain_counts"].get("open") for r in records)
