"""Policy parsing: good policies parse into what they say; every bad one names file, dotted path and value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.observation import is_known_metric
from autocurriculum.policy import (
    BudgetAction,
    ChangeOrder,
    Comparison,
    LoraSpec,
    PlateauTest,
    PolicyError,
    Source,
    expand_plan,
    load,
    parse,
    parse_table,
)
from autocurriculum.rewards import REWARD_PARAMETERS

from .bad_policies.cases import BASE, BASE_DATA, CASES, BadCase, swap
from .conftest import REPO


def test_default_policy_encodes_the_seed_curriculum() -> None:
    policy = load(REPO / "policies" / "default.toml")
    assert [p.name for p in policy.phases] == ["behaviour", "correctness", "generalisation"]
    assert policy.model.preset == "gemma3_1b_it" and policy.model.lora is not None
    p1, p2, p3 = policy.phases
    assert [r.name for r in p1.rewards] == ["punish_refusal", "strict_format_gate", "light_length_penalty"]
    assert [r.name for r in p2.rewards] == ["punish_refusal", "strict_format_gate", "check_answer_strict", "penalize_length"]
    assert p3.rewards == p2.rewards
    assert p1.mixture.domains(policy.sources) == {"math"}
    assert 0.2 <= p1.mixture.components[0].subset.end - p1.mixture.components[0].subset.start <= 0.3
    assert p2.mixture.components[0].subset.is_whole
    assert {policy.sources[c.source].domain: c.weight for c in p3.mixture.components} == {
        "math": 0.4, "code": 0.2, "science": 0.2, "open": 0.2}
    assert p3.terminal and not p1.terminal and not p2.terminal


def test_base_policy_maps_every_section_onto_its_dataclass() -> None:
    policy = parse(BASE, "base.toml")
    assert (policy.run.max_steps, policy.run.checkpoint_every, policy.run.seed) == (300, 25, 0)
    assert policy.model.lora == LoraSpec(rank=8, alpha=8.0)
    assert (policy.model.tiny.layers, policy.model.tiny.vocab_size) == (2, 512)
    assert policy.model.warm_start.steps == 100
    assert (policy.training.mesh_fsdp, policy.training.mesh_tp) == (1, 1)
    assert policy.metrics.port == 9464 and policy.judgement.settle_steps == 5
    assert (policy.judgement.collapse_patience, policy.judgement.max_restores) == (5, 2)  # the defaults
    assert [(g.metric, g.higher_is_better) for g in policy.judgement.guards] == [
        ("extraction_rate", True), ("refusal_rate", False)]
    assert policy.eval.sources == ("arithmetic_test",)
    assert policy.sources["arithmetic"].options == {"count": 400}
    behaviour, correctness, _ = policy.phases
    assert behaviour.criteria[1].comparison is Comparison.LE and behaviour.criteria[1].threshold == 0.01
    assert behaviour.on_budget_exhausted is BudgetAction.HOLD and correctness.on_budget_exhausted is BudgetAction.ADVANCE
    assert correctness.change_order is ChangeOrder.DATA_FIRST


def test_plateau_entries_inherit_the_plateau_table_and_override_it() -> None:
    text = swap('[plateau]\ntest = "trend"\nwindow = 10\npatience = 10\n', '[plateau]\ntest = "trend"\nwindow = 12\npatience = 7\n')(BASE)
    text = swap('test = "mann_kendall"\n', 'test = "mann_kendall"\nwindow = 30\nsource = "eval"\n')(text)
    policy = parse(text, "t.toml")
    first = policy.phases[0].plateau[0]
    assert (first.test, first.window, first.patience, first.source) == (PlateauTest.TREND, 12, 7, Source.ROLLOUT)
    accuracy = policy.phases[1].plateau[0]
    assert (accuracy.test, accuracy.window, accuracy.patience, accuracy.source) == (PlateauTest.MANN_KENDALL, 30, 7, Source.EVAL)


def test_reward_parameters_are_stored_with_their_defaults_filled_in() -> None:
    text = swap('name = "light_length_penalty"\n', 'name = "light_length_penalty"\nparams = { budget = 40 }\n')(BASE)
    reward = parse(text, "t.toml").phases[0].rewards[2]
    assert reward.params == {**REWARD_PARAMETERS["light_length_penalty"], "budget": 40.0}


def test_explicit_default_parameters_are_the_same_reward_set() -> None:
    # phase 3 spells out penalize_length's defaults: still "the same set", so new domains are allowed
    explicit = ", ".join(f"{k} = {v}" for k, v in REWARD_PARAMETERS["penalize_length"].items())
    tail = 'name = "penalize_length"\n\n[[phases.criteria]]\nmetric = "domain_compliance:code"'
    text = swap(tail, tail.replace('"penalize_length"\n', f'"penalize_length"\nparams = {{ {explicit} }}\n'))(BASE)
    policy = parse(text, "t.toml")
    assert policy.phases[2].rewards == policy.phases[1].rewards


def test_reordered_reward_set_is_unchanged() -> None:
    block = ('[[phases.rewards]]\nname = "check_answer_strict"\n\n[[phases.rewards]]\nname = "penalize_length"\n\n'
             '[[phases.criteria]]\nmetric = "domain_compliance:code"')
    text = swap(block, '[[phases.rewards]]\nname = "penalize_length"\n\n[[phases.rewards]]\nname = "check_answer_strict"\n\n'
                '[[phases.criteria]]\nmetric = "domain_compliance:code"')(BASE)
    policy = parse(text, "t.toml")
    assert policy.phases[2].rewards == policy.phases[1].rewards
    assert expand_plan(policy)[-1].changes.value == "data"


def test_lora_absent_or_false_means_full_weight_training() -> None:
    lora_block = "[model.lora]\nrank = 8\nalpha = 8.0\n"
    assert parse(swap(lora_block, "")(BASE), "t.toml").model.lora is None
    assert parse(swap('preset = "tiny"\n\n' + lora_block, 'preset = "tiny"\nlora = false\n')(BASE), "t.toml").model.lora is None


def test_when_no_phase_says_terminal_the_last_one_is() -> None:
    policy = parse(swap("terminal = true\n", "")(BASE), "t.toml")
    assert [p.terminal for p in policy.phases] == [False, False, True]
    assert expand_plan(policy)[-1].exit_gate.value == "terminal"


def test_overrides_apply_before_validation() -> None:
    policy = parse(BASE, "t.toml", overrides=["run.max_steps=50", "training.temperature=0.7", 'run.name="x"',
                                              "phases[1].max_steps=99", "model.cache_dir=/tmp/cache dir"])
    assert (policy.run.max_steps, policy.training.temperature, policy.run.name) == (50, 0.7, "x")
    assert policy.phases[1].max_steps == 99
    assert policy.model.cache_dir == "/tmp/cache dir"


def test_a_relative_path_given_with_set_is_read_from_the_working_directory(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A path typed in a shell means the shell's folder; one written in the policy, the policy's folder."""
    folder = tmp_path / "policies"
    folder.mkdir()
    text = BASE.replace("[sources.arithmetic]\n", '[sources.arithmetic]\npath = "data/in-file"\n', 1)
    assert text != BASE
    (folder / "p.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    policy = load(folder / "p.toml", overrides=["model.tokenizer=../tok.model", "model.weights=~/w.gguf",
                                                "model.cache_dir=/abs/cache", "run.run_dir=runs/mine"])
    assert policy.model.tokenizer == str(tmp_path.parent / "tok.model")
    assert policy.model.weights == str(Path("~/w.gguf").expanduser())
    assert policy.model.cache_dir == "/abs/cache"
    assert policy.run.run_dir == "runs/mine"  # where the run writes: always from the working directory
    assert policy.sources["arithmetic"].path == "data/in-file"  # written in the file: left for the policy's folder
    changed = load(folder / "p.toml", overrides=["sources.arithmetic.path=../data"])
    assert changed.sources["arithmetic"].path == str(tmp_path.parent / "data")


@pytest.mark.parametrize("override, path, value, fragment", [
    ("run.max_steps=0", "run.max_steps", 0, "must be >= 1"),
    ("run.max_step=5", "run.max_step", 5, "did you mean 'max_steps'?"),
    ("phases[1].terminal=true", "phases[1].terminal", True, "only the last phase"),
    ("run.max_steps", "--set", "run.max_steps", "expected KEY=VALUE"),
    ("run.max_steps.x=1", "--set", "run.max_steps.x=1", "run.max_steps is not a table"),
    ("phases[7].max_steps=1", "--set", "phases[7].max_steps=1", "phases has no entry [7]"),
    ("run..seed=1", "--set", "run..seed=1", "cannot read key segment"),
])
def test_bad_override_names_the_path(override: str, path: str, value: object, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(BASE, "t.toml", overrides=[override])
    assert (caught.value.path, caught.value.value) == (path, value)
    assert fragment in str(caught.value)


def test_syntax_error_at_the_end_of_the_document_shows_the_last_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse(BASE + "\nport = ", "t.toml")
    assert caught.value.path == "end of document" and caught.value.value == "port = "


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_policy_names_file_path_and_value(case: BadCase) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(case.text(), "bad.toml")
    error = caught.value
    assert (error.file, error.path) == ("bad.toml", case.path), str(error)
    assert error.value == case.value and type(error.value) is type(case.value), str(error)
    assert case.fragment in f"{error.message}; {error.hint}", str(error)
    assert str(error).startswith(f"bad.toml: {case.path}: {error.message} (got {case.value!r})")


def test_there_are_at_least_thirty_distinct_bad_policies() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 30
    assert len({c.text() for c in CASES}) == len(CASES)  # no two cases are the same edit


def test_unreadable_and_undecodable_files_are_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy") as missing:
        load(tmp_path / "missing.toml")
    assert missing.value.file == str(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(BASE.replace("bad-policy-base", "caf\xe9").encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load(latin)


# --- no input, however odd, escapes as anything but a PolicyError


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(BASE_DATA)
ODD_VALUES = st.one_of(
    st.none(),  # None means "delete the key"
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=4), st.dictionaries(st.text(max_size=4), st.integers())),
             max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), ODD_VALUES), min_size=1, max_size=3))
def test_arbitrary_edits_give_a_policy_or_a_policy_error(edits: list[tuple[tuple[Any, ...], object]]) -> None:
    data = copy.deepcopy(BASE_DATA)
    for path, value in edits:
        node: Any = data
        try:
            for step in path[:-1]:
                node = node[step]
            if value is None:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    try:
        policy = parse_table(data, "fuzz.toml")
    except PolicyError as error:
        assert str(error).startswith(f"fuzz.toml: {error.path}: ")
        return
    # what still parses keeps every rule: its metrics are known and its plan is single-factor
    assert all(is_known_metric(c.metric) for p in policy.phases for c in p.criteria)
    assert expand_plan(policy)



def test_data_seed_keeps_data_and_base_fixed_across_training_seeds() -> None:
    """Seeds of one policy compare on the same items, held-out sample and cached base (run.data_seed)."""
    from autocurriculum.library import SourceLibrary

    tiny = REPO / "policies" / "tiny.toml"

    def library(*overrides: str) -> SourceLibrary:
        return SourceLibrary(load(tiny, overrides), base_dir=tiny.parent, cache_dir=None)

    fixed = [library("run.seed=1", "run.data_seed=0"), library("run.seed=2", "run.data_seed=0")]
    assert fixed[0].recipe() == fixed[1].recipe()
    assert [i.id for i in fixed[0].heldout()] == [i.id for i in fixed[1].heldout()]
    free = [library("run.seed=1"), library("run.seed=2")]  # no data_seed: the data follow the run's seed
    assert free[0].recipe() != free[1].recipe()
    assert [i.id for i in free[0].heldout()] != [i.id for i in free[1].heldout()]
    assert load(tiny, ["run.seed=3"]).run.dataset_seed == 3
    with pytest.raises(PolicyError) as error:
        load(tiny, ["run.data_seed=-1"])
    assert error.value.path == "run.data_seed" and error.value.value == -1
