"""A user's own reward functions (Tunix's signature) in a policy: validated, scored, recorded, exported,
part of the single-factor plan, and never a crash when they fail. Pure: the scripted trainer, no JAX."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from autocurriculum import logs
from autocurriculum.cli import main
from autocurriculum.daemon import Daemon
from autocurriculum.exits import EX_CONFIG, EX_OK
from autocurriculum.policy import Factor, expand_plan, load
from autocurriculum.rewards import (
    REWARD_PARAMETERS,
    RewardDispatcher,
    check_answer_strict,
    light_length_penalty,
    penalize_length,
    punish_refusal,
    strict_format_gate,
)
from autocurriculum.spec import RewardSpec

from .conftest import REPO
from .daemon_process import policy_with_rewards
from .fake_trainer import ScriptedBackend

FAST_POLICY = REPO / "tests" / "policies" / "fast.toml"
EXAMPLES = REPO / "tests" / "user_rewards"


def policy_with(tmp_path: Path, *rewards: str) -> Path:
    """tests/policies/fast.toml with `rewards` (TOML entries) added to phase 1's reward set."""
    return policy_with_rewards(FAST_POLICY, tmp_path, *rewards)


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    logs.configure(json=True, level=30, stream=sys.stderr)


def test_validate_imports_a_user_reward_by_module_or_file_and_prints_it(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    policy = policy_with(tmp_path, 'name = "brevity"\nfunction = "tests.user_rewards.tunix_style:brevity"',
                         f'name = "number"\nfunction = "{EXAMPLES / "tunix_style.py"}:mentions_a_number"\n'
                         'params = { bonus = 0.5 }')
    assert main(["validate", str(policy)]) == EX_OK, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "brevity(tests.user_rewards.tunix_style:brevity)" in out and "bonus=0.5" in out


@pytest.mark.parametrize("function, fragment", [
    ("tests.user_rewards.nowhere:brevity", "cannot import 'tests.user_rewards.nowhere': ModuleNotFoundError"),
    ("tests.user_rewards.tunix_style:nothing", "has no 'nothing'"),
    ("tests.user_rewards.broken:no_kwargs", "must have Tunix's reward signature fn(prompts, completions, **kwargs)"),
    ("tests.user_rewards.broken:returns_strings", "returned 'good' (str): a reward must be a number"),
    ("tests.user_rewards.broken:one_value_short", "returned 1 values for 2 completions"),
    ("missing_file.py:brevity", "no file"),
])
def test_validate_refuses_a_reward_that_cannot_work_naming_its_toml_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], function: str, fragment: str) -> None:
    policy = policy_with(tmp_path, f'name = "mine"\nfunction = "{function}"')
    assert main(["validate", str(policy)]) == EX_CONFIG
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"autocurriculum: {policy}: phases[0].rewards[3].function: ")
    assert fragment in err and repr(function) in err


@pytest.mark.parametrize("entry, path, fragment", [
    ('name = "strict_format_gate"\nfunction = "tests.user_rewards.tunix_style:brevity"', "phases[0].rewards[3].name",
     "is a built-in reward's name"),
    ('name = "mine"\nfunction = "no_colon"', "phases[0].rewards[3].function", "must be 'package.module:function'"),
    ('name = "mine"\nfunction = "tests.user_rewards.tunix_style:brevity"\nparams = { completions = 1 }',
     "phases[0].rewards[3].params.completions", "cannot be a parameter name"),
])
def test_a_malformed_user_reward_entry_is_a_policy_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       entry: str, path: str, fragment: str) -> None:
    assert main(["validate", str(policy_with(tmp_path, entry))]) == EX_CONFIG
    err = capsys.readouterr().err
    assert f": {path}: " in err and fragment in err


def test_dropping_a_user_reward_is_a_reward_change_in_the_plan(tmp_path: Path) -> None:
    policy = load(policy_with(tmp_path, 'name = "brevity"\nfunction = "tests.user_rewards.tunix_style:brevity"'))
    plan = expand_plan(policy)
    assert "brevity" in [r.name for r in plan[0].rewards]
    changed = next(step for step in plan[1:] if "brevity" not in [r.name for r in step.rewards])
    assert changed.changes is Factor.REWARDS
    again = load(policy_with(tmp_path, 'name = "brevity"\nfunction = "tests.user_rewards.tunix_style:brevity"\n'
                                       'params = { scale = 2 }'))
    assert again.phases[0].rewards != policy.phases[0].rewards  # new params: another reward set


def test_a_user_reward_is_scored_with_the_parsed_contract_recorded_and_exported(tmp_path: Path) -> None:
    policy = load(policy_with(tmp_path, 'name = "same_answer"\n'
                                        'function = "tests.user_rewards.tunix_style:uses_the_parsed_contract"'),
                  overrides=["run.max_steps=4"])
    daemon = Daemon(policy, tmp_path / "run", resume=False, backend=ScriptedBackend())
    assert daemon.run() == EX_OK
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    means = [line["observation"]["reward_means"]["same_answer"] for line in lines]
    accuracy = [line["observation"]["metrics"]["accuracy"] for line in lines]
    assert means == pytest.approx(accuracy)  # the `good` script answers right inside the contract
    from prometheus_client import generate_latest

    exposition = generate_latest(daemon.registry).decode()
    assert f'autocurriculum_reward_function_mean{{function="same_answer"}} {float(means[-1])}' in exposition


def test_a_failing_user_reward_is_nan_alerted_and_never_a_crash_or_a_switch(tmp_path: Path) -> None:
    events = io.StringIO()
    logs.configure(json=True, level=20, stream=events)
    flaky = tmp_path / "flaky.py"
    flaky.write_text("calls = 0\n\n\ndef judge(prompts, completions, **kwargs):\n    global calls\n    calls += 1\n"
                     "    if calls > 2:\n        raise TimeoutError('the judge did not answer')\n"
                     "    return [0.0 for _ in completions]\n")
    policy = load(policy_with(tmp_path, f'name = "judge"\nfunction = "{flaky}:judge"'),
                  overrides=["run.max_steps=12"])
    daemon = Daemon(policy, tmp_path / "run", resume=False, backend=ScriptedBackend())
    assert daemon.run() == EX_OK
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    failing = [line for line in lines if line["step"] >= 2]  # call 1 was validation's, call 2 step 1's
    assert all(line["observation"]["nonfinite"] == 16 for line in failing)
    assert all("nonfinite_rewards" in line["alerts"] for line in failing)
    assert all(line["decision"]["action"] == "none" for line in failing)  # the `good` script met phase 1 by now
    failures = [json.loads(line) for line in events.getvalue().splitlines() if '"reward_failed"' in line]
    assert len(failures) == len(failing)
    assert failures[0]["reward"] == "judge" and "TimeoutError: the judge did not answer" in failures[0]["problem"]


def test_the_built_ins_are_plain_tunix_reward_functions_too() -> None:
    texts = ["<reasoning>3 + 4 = 7</reasoning><answer>7</answer>", "I cannot help with that.", "7"]
    answer = np.array(["7", "7", "7"])
    dispatcher = RewardDispatcher()
    expected = {fn.__name__: fn(prompts=["q"] * 3, completions=texts, answer=answer)
                for fn in dispatcher.reward_fns(tuple(RewardSpec(name) for name in REWARD_PARAMETERS))}
    plain = [punish_refusal, strict_format_gate, light_length_penalty, check_answer_strict, penalize_length]
    assert [fn.__name__ for fn in plain] == list(REWARD_PARAMETERS)
    for fn in plain:
        values = fn(prompts=["q"] * 3, completions=texts, answer=answer, mode="train")
        assert values == expected[fn.__name__] and all(math.isfinite(v) for v in values)
