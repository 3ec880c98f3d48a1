"""Policy parsing: good policies parse; every bad one names file, dotted path and value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from autocurriculum.policy import ExitGate, Factor, PolicyError, describe_plan, expand_plan, load, parse

from .conftest import REPO


def test_default_policy_encodes_the_seed_curriculum() -> None:
    policy = load(REPO / "policies" / "default.toml", overrides=["model.weights=/models/gemma3-1b-it"])
    assert [p.name for p in policy.phases] == ["behaviour", "correctness", "generalisation"]
    assert policy.model.preset == "gemma3_1b_it" and policy.model.lora is not None
    p1, p2, p3 = policy.phases
    assert [r.name for r in p1.rewards] == ["punish_refusal", "strict_format_gate", "light_length_penalty"]
    assert [r.name for r in p2.rewards] == ["punish_refusal", "strict_format_gate", "check_answer_strict", "penalize_length"]
    assert p3.rewards == p2.rewards
    assert p1.mixture.components[0].subset.end == 0.25
    assert {c.source: c.weight for c in p3.mixture.components} == {"gsm8k": 0.5, "code": 0.25, "qa": 0.25}
    assert p3.terminal


def test_default_plan_splits_phase_one_to_two_into_data_then_rewards() -> None:
    policy = load(REPO / "policies" / "default.toml", overrides=["model.weights=/models/x"])
    plan = expand_plan(policy)
    assert [(s.label, s.changes) for s in plan] == [
        ("behaviour", Factor.NONE),
        ("correctness/a", Factor.DATA),
        ("correctness/b", Factor.REWARDS),
        ("generalisation", Factor.DATA),
    ]
    assert plan[1].exit_gate is ExitGate.SETTLE and plan[3].exit_gate is ExitGate.TERMINAL
    text = describe_plan(policy, plan)
    assert "2. correctness/a: DATA" in text and "3. correctness/b: REWARDS" in text


def test_rewards_first_order_swaps_the_halves(tiny_text: str) -> None:
    text = tiny_text.replace('change_order = "data_first"', 'change_order = "rewards_first"')
    plan = expand_plan(parse(text, "t.toml"))
    assert [s.changes for s in plan[1:3]] == [Factor.REWARDS, Factor.DATA]
    assert plan[1].mixture == plan[0].mixture and plan[1].rewards == plan[2].rewards


def test_overrides_apply_before_validation(tiny_text: str) -> None:
    policy = parse(tiny_text, "t.toml", overrides=["run.max_steps=50", "training.temperature=0.7", 'run.name="x"'])
    assert (policy.run.max_steps, policy.training.temperature, policy.run.name) == (50, 0.7, "x")


def _replace(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


# (name, mutation of tiny.toml, expected dotted path, expected fragment of the message)
BAD = [
    ("syntax error", lambda t: t + "\n[run\n", "<syntax>", "TOML syntax error"),
    ("unknown top-level key", lambda t: "colour = 1\n" + t, "colour", "unknown key"),
    ("unknown run key", lambda t: _replace(t, "seed = 0\n", "seeed = 0\n"), "run.seeed", "did you mean 'seed'?"),
    ("misspelt reward", lambda t: _replace(t, 'name = "punish_refusal"', 'name = "punish_refusl"'),
     "phases[0].rewards[0].name", "did you mean 'punish_refusal'?"),
    ("unknown reward parameter", lambda t: _replace(t, 'name = "strict_format_gate"\n', 'name = "strict_format_gate"\nparams = { fial = -1.0 }\n'),
     "phases[0].rewards[1].params.fial", "did you mean 'fail'?"),
    ("weights that do not sum", lambda t: _replace(t, "weight = 0.25\n", "weight = 0.35\n"), "phases[2].data", "sum to 1"),
    ("zero weight", lambda t: _replace(t, "weight = 1.0\nsubset", "weight = 0.0\nsubset"), "phases[0].data[0].weight", "must be >"),
    ("unknown source", lambda t: _replace(t, 'source = "code"', 'source = "kode"'), "phases[2].data[1].source", "did you mean 'code'?"),
    ("subset start after end", lambda t: _replace(t, "start = 0.0, end = 0.3", "start = 0.5, end = 0.3"),
     "phases[0].data[0].subset.end", "greater than start"),
    ("subset out of range", lambda t: _replace(t, "end = 0.3", "end = 1.3"), "phases[0].data[0].subset.end", "<= 1"),
    ("rate threshold out of range", lambda t: _replace(t, "threshold = 0.95", "threshold = 95"),
     "phases[0].criteria[0].threshold", "<= 1"),
    ("unknown metric", lambda t: _replace(t, 'metric = "extraction_rate"\ncomparison', 'metric = "extraction"\ncomparison'),
     "phases[0].criteria[0].metric", "did you mean 'extraction_rate'?"),
    ("bad comparison", lambda t: _replace(t, 'comparison = ">="', 'comparison = "=>"'), "phases[0].criteria[0].comparison", "must be one of"),
    ("domain metric for an unused domain", lambda t: _replace(t, 'metric = "domain_compliance:code"\ncomparison', 'metric = "domain_compliance:poetry"\ncomparison'),
     "phases[2].criteria[0].metric", "no phase's mixture uses domain 'poetry'"),
    ("negative window", lambda t: _replace(t, "[plateau]\ntest = \"trend\"\nwindow = 10", "[plateau]\ntest = \"trend\"\nwindow = -3"),
     "plateau.window", "must be >= 3"),
    ("metrics window zero", lambda t: _replace(t, "window = 10\nbind", "window = 0\nbind"), "metrics.window", "must be >= 1"),
    ("patience not an integer", lambda t: _replace(t, "patience = 10", "patience = 2.5"), "plateau.patience", "must be an integer"),
    ("alpha out of range", lambda t: _replace(t, "alpha = 0.05", "alpha = 1.5"), "plateau.alpha", "must be <"),
    ("unknown plateau test", lambda t: _replace(t, 'metric = "accuracy"\ntest = "trend"', 'metric = "accuracy"\ntest = "trnd"'),
     "phases[1].plateau[0].test", "did you mean 'trend'?"),
    ("string where a number belongs", lambda t: _replace(t, "learning_rate = 3e-3\nprompts", 'learning_rate = "fast"\nprompts'),
     "training.learning_rate", "must be a finite number"),
    ("port out of range", lambda t: _replace(t, "port = 9464", "port = 70000"), "metrics.port", "<= 65535"),
    ("max_steps zero", lambda t: _replace(t, "max_steps = 600", "max_steps = 0"), "run.max_steps", "must be >= 1"),
    ("checkpoint_every negative", lambda t: _replace(t, "checkpoint_every = 25", "checkpoint_every = -1"), "run.checkpoint_every", "must be >= 1"),
    ("bad change order", lambda t: _replace(t, 'change_order = "data_first"', 'change_order = "both_at_once"'),
     "phases[1].change_order", "must be one of data_first, rewards_first"),
    ("new domains with changed rewards", lambda t: _replace(t, 'name = "penalize_length"\n\n[[phases.criteria]]\nmetric = "domain_compliance:code"',
                                                             'name = "light_length_penalty"\n\n[[phases.criteria]]\nmetric = "domain_compliance:code"'),
     "phases[2].rewards", "rewards must not change when domains are introduced"),
    ("domain mixing in phase 1", lambda t: _replace(t, 'weight = 1.0\nsubset = { start = 0.0, end = 0.3 }',
                                                    'weight = 0.5\nsubset = { start = 0.0, end = 0.3 }\n\n[[phases.data]]\nsource = "code"\nweight = 0.5'),
     "phases[0].data", "no domain mixing before phase 1 has stabilised"),
    ("phase without criteria", lambda t: re.sub(r'\[\[phases\.criteria\]\]\nmetric = "extraction_rate"\ncomparison = ">="\nthreshold = 0\.9\n', "", t),
     "phases[1].criteria", "criteria AND plateau"),
    ("phase without plateau", lambda t: _replace(t, '[[phases.plateau]]\nmetric = "accuracy"\ntest = "trend"\n', ""),
     "phases[1].plateau", "criteria AND plateau"),
    ("duplicate phase name", lambda t: _replace(t, 'name = "correctness"', 'name = "behaviour"'), "phases[1].name", "unique"),
    ("terminal in the middle", lambda t: _replace(t, 'change_order = "data_first"', 'change_order = "data_first"\nterminal = true'),
     "phases[1].terminal", "only the last phase"),
    ("unknown source kind", lambda t: _replace(t, 'kind = "qa"', 'kind = "quiz"'), "sources.qa.kind", "must be one of"),
    ("unknown model preset", lambda t: _replace(t, 'preset = "tiny"', 'preset = "gemma3_1b"'), "model.preset", "did you mean"),
    ("guard on an unknown metric", lambda t: _replace(t, '{ metric = "extraction_rate", max_drop = 0.15 }', '{ metric = "extractoin_rate", max_drop = 0.15 }'),
     "judgement.guards[0].metric", "did you mean 'extraction_rate'?"),
    ("unknown eval source", lambda t: _replace(t, 'sources = ["arithmetic_test"]', 'sources = ["arithmetic_tset"]'),
     "eval.sources[0]", "did you mean 'arithmetic_test'?"),
    ("unknown prompt template", lambda t: _replace(t, 'prompt_template = "plain"', 'prompt_template = "chat"'),
     "training.prompt_template", "must be one of"),
    ("pretrained preset without weights", lambda t: _replace(t, 'preset = "tiny"', 'preset = "gemma3_1b_it"'),
     "model.weights", "local weights path"),
    ("warm start shares over one", lambda t: _replace(t, "contract_share = 0.3", "contract_share = 0.6"),
     "model.warm_start.contract_share", "must be <= 1"),
    ("phases that change nothing", lambda t: _replace(t, "terminal = true\n", "") + '\n[[phases]]\nname = "again"\nterminal = true\n'
     + t[t.index("max_steps = 100\non_budget"):], "phases[3]", "changes nothing"),
]


@pytest.mark.parametrize("name, mutate, path, fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_policy_names_file_path_and_value(tiny_text: str, name: str, mutate, path: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(mutate(tiny_text), "bad.toml")
    error = caught.value
    assert error.file == "bad.toml"
    assert error.path == path, str(error)
    assert fragment in str(error), str(error)
    assert str(error).startswith(f"bad.toml: {path}: ")
    assert "(got " in str(error)


def test_there_are_at_least_thirty_distinct_bad_policies() -> None:
    assert len({b[0] for b in BAD}) >= 30


def test_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy"):
        load(tmp_path / "missing.toml")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autocurriculum", *args], capture_output=True, text=True, cwd=REPO)


def test_validate_prints_the_plan_and_exits_zero() -> None:
    result = _cli("validate", "policies/default.toml", "--set", "model.weights=/models/gemma3-1b-it")
    assert result.returncode == 0, result.stderr
    assert "2. correctness/a: DATA" in result.stdout
    assert "3. correctness/b: REWARDS" in result.stdout
    assert result.stdout.strip().endswith("policy OK")


def test_validate_bad_policy_exits_78_with_the_message(tmp_path: Path, tiny_text: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_text.replace('name = "punish_refusal"', 'name = "punish_refusl"', 1))
    result = _cli("validate", str(bad))
    assert result.returncode == 78
    assert f"{bad}: phases[0].rewards[0].name: unknown reward function (got 'punish_refusl'); did you mean 'punish_refusal'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_subcommand_has_help_with_an_example() -> None:
    for sub in ("run", "validate", "status", "ctl", "replay", "eval"):
        result = _cli(sub, "--help")
        assert result.returncode == 0
        assert "example:" in result.stdout and "autocurriculum " + sub in result.stdout
