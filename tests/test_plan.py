"""Plan expansion: every step changes one factor, split switches settle in between, gates sit where they belong."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.policy import ExitGate, Factor, Policy, expand_plan, parse
from autocurriculum.rewards import REWARD_PARAMETERS

from .bad_policies.cases import BASE, swap
from .conftest import REPO

# --- units: build a policy, expand once, assert

PHASE_2_DATA = '[[phases.data]]\nsource = "arithmetic"\nweight = 1.0\n\n[[phases.rewards]]\nname = "punish_refusal"'
PHASE_2_REWARDS_TAIL = ('[[phases.rewards]]\nname = "check_answer_strict"\n\n[[phases.rewards]]\nname = "penalize_length"\n\n'
                        '[[phases.criteria]]\nmetric = "strict_compliance"')


def _base(*edits: tuple[str, str]) -> Policy:
    text = BASE
    for old, new in edits:
        text = swap(old, new)(text)
    return parse(text, "base.toml")


def test_default_plan_splits_phase_one_to_two_into_data_then_rewards() -> None:
    policy = parse((REPO / "policies" / "default.toml").read_text(), "default.toml")
    plan = expand_plan(policy)
    assert [(s.label, s.changes) for s in plan] == [
        ("behaviour", Factor.NONE),
        ("correctness/a", Factor.DATA),
        ("correctness/b", Factor.REWARDS),
        ("generalisation", Factor.DATA),
    ]
    assert [s.exit_gate for s in plan] == [ExitGate.PHASE_CRITERIA, ExitGate.SETTLE, ExitGate.PHASE_CRITERIA, ExitGate.TERMINAL]


def test_data_first_split_changes_data_then_rewards_and_settles_between() -> None:
    policy = _base()
    behaviour, correctness, _ = policy.phases
    first, half_a, half_b, last = expand_plan(policy)
    assert (first.changes, first.exit_gate, first.criteria, first.plateau) == (
        Factor.NONE, ExitGate.PHASE_CRITERIA, behaviour.criteria, behaviour.plateau)
    assert (half_a.mixture, half_a.rewards) == (correctness.mixture, behaviour.rewards)
    assert (half_a.changes, half_a.exit_gate, half_a.criteria) == (Factor.DATA, ExitGate.SETTLE, ())
    assert half_a.plateau == behaviour.plateau  # the behaviour it left must plateau again on the new data
    assert (half_b.mixture, half_b.rewards) == (correctness.mixture, correctness.rewards)
    assert (half_b.changes, half_b.exit_gate) == (Factor.REWARDS, ExitGate.PHASE_CRITERIA)
    assert (half_b.criteria, half_b.plateau) == (correctness.criteria, correctness.plateau)
    assert (half_a.part, half_b.part, half_a.phase_index, half_b.phase_index) == ("a", "b", 1, 1)
    assert half_a.max_steps == half_b.max_steps == correctness.max_steps
    assert (last.changes, last.exit_gate, last.index) == (Factor.DATA, ExitGate.TERMINAL, 3)


def test_rewards_first_split_changes_rewards_then_data() -> None:
    policy = _base(('change_order = "data_first"', 'change_order = "rewards_first"'))
    behaviour, correctness, _ = policy.phases
    _, half_a, half_b, _ = expand_plan(policy)
    assert (half_a.changes, half_a.mixture, half_a.rewards) == (Factor.REWARDS, behaviour.mixture, correctness.rewards)
    assert (half_b.changes, half_b.mixture, half_b.rewards) == (Factor.DATA, correctness.mixture, correctness.rewards)


def test_a_data_only_switch_is_one_step() -> None:
    # phase 2 keeps phase 1's rewards: only the subset widens
    policy = _base((PHASE_2_REWARDS_TAIL, '[[phases.rewards]]\nname = "light_length_penalty"\n\n[[phases.criteria]]\n'
                    'metric = "strict_compliance"'),
                   ('name = "check_answer_strict"\n\n[[phases.rewards]]\nname = "penalize_length"\n\n[[phases.criteria]]\n'
                    'metric = "domain_compliance:code"',
                    'name = "light_length_penalty"\n\n[[phases.criteria]]\nmetric = "domain_compliance:code"'))
    plan = expand_plan(policy)
    assert [(s.label, s.changes) for s in plan] == [
        ("behaviour", Factor.NONE), ("correctness", Factor.DATA), ("generalisation", Factor.DATA)]
    assert plan[1].rewards is plan[0].rewards


def test_a_rewards_only_switch_is_one_step() -> None:
    # phase 2 keeps phase 1's 30% slice: only the rewards change
    policy = _base((PHASE_2_DATA, PHASE_2_DATA.replace("weight = 1.0\n", "weight = 1.0\nsubset = { start = 0.0, end = 0.3 }\n")))
    plan = expand_plan(policy)
    assert [(s.label, s.changes, s.exit_gate) for s in plan[:2]] == [
        ("behaviour", Factor.NONE, ExitGate.PHASE_CRITERIA), ("correctness", Factor.REWARDS, ExitGate.PHASE_CRITERIA)]
    assert plan[1].mixture == plan[0].mixture


def test_a_single_phase_plan_is_one_terminal_step() -> None:
    text = BASE[:BASE.index('# ---------------------------------------------------------------- phase 2')]
    plan = expand_plan(parse(text, "one.toml"))
    assert [(s.changes, s.exit_gate) for s in plan] == [(Factor.NONE, ExitGate.TERMINAL)]


# --- property: any valid policy expands into single-factor steps

SOURCES = {"m1": "math", "m2": "math", "m3": "math", "code": "code", "qa": "qa", "logic": "qa"}
HEADER = "\n".join(
    f'[sources.{name}]\nkind = "{"arithmetic" if domain == "math" else domain}"\ndomain = "{domain}"' for name, domain in SOURCES.items()
)
SLICES = [None, (0.0, 0.3), (0.2, 0.5), (0.0, 1.0)]
PARAM_VALUES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0]


Mix = tuple[tuple[str, float, tuple[float, float] | None], ...]
Rewards = tuple[tuple[str, tuple[tuple[str, float], ...]], ...]


# Strategies built once: building them inside a draw costs more than the test itself.
SHARES, PIECES = st.integers(1, 5), st.sampled_from(SLICES)
SOURCE_CHOICES = {tuple(allowed): st.lists(st.sampled_from(allowed), min_size=1, max_size=len(allowed), unique=True)
                  for allowed in [sorted(SOURCES), *([n for n, d in SOURCES.items() if d == dom] for dom in set(SOURCES.values()))]}
REWARD_NAMES = st.lists(st.sampled_from(sorted(REWARD_PARAMETERS)), min_size=1, unique=True)
PARAMS_OF = {n: st.lists(st.tuples(st.sampled_from(sorted(p)), st.sampled_from(PARAM_VALUES)), max_size=2, unique_by=lambda kv: kv[0])
             for n, p in REWARD_PARAMETERS.items()}


@st.composite
def mixtures(draw: st.DrawFn, allowed: list[str]) -> Mix:
    """Distinct sources with positive weights that sum to 1, each maybe a slice (None: the whole source)."""
    names = draw(SOURCE_CHOICES[tuple(allowed)])
    shares = [draw(SHARES) for _ in names]
    pieces = [draw(PIECES) for _ in names]
    return tuple((n, k / sum(shares), None if p == (0.0, 1.0) else p) for n, k, p in zip(names, shares, pieces))


@st.composite
def reward_sets(draw: st.DrawFn) -> Rewards:
    """Distinct reward names, each with up to two parameters set (possibly to their default)."""
    return tuple((n, tuple(draw(PARAMS_OF[n]))) for n in draw(REWARD_NAMES))


def _effective(rewards: Rewards) -> frozenset[tuple[str, frozenset[tuple[str, float]]]]:
    return frozenset((n, frozenset({**REWARD_PARAMETERS[n], **dict(p)}.items())) for n, p in rewards)


def _domains(mixture: Mix) -> frozenset[str]:
    return frozenset(SOURCES[n] for n, _, _ in mixture)


@st.composite
def curricula(draw: st.DrawFn) -> list[dict[str, object]]:
    """Phases that obey the rules by construction: a single-domain first phase, new domains only with the
    previous phase's rewards (possibly reordered), and no phase identical to the one before it."""
    first_domain = draw(st.sampled_from(sorted(set(SOURCES.values()))))
    phases: list[dict[str, object]] = [
        {"mixture": draw(mixtures([n for n, d in SOURCES.items() if d == first_domain])), "rewards": draw(reward_sets())}]
    for _ in range(draw(st.integers(0, 5))):
        before_mix, before_rewards = phases[-1]["mixture"], phases[-1]["rewards"]
        assert isinstance(before_mix, tuple) and isinstance(before_rewards, tuple)
        mixture, rewards = draw(mixtures(sorted(SOURCES))), draw(reward_sets())
        if _domains(mixture) - _domains(before_mix):
            rewards = tuple(draw(st.permutations(before_rewards)))
        elif mixture == before_mix and _effective(rewards) == _effective(before_rewards):
            unused = [n for n in sorted(REWARD_PARAMETERS) if n not in {r for r, _ in rewards}]
            rewards = rewards + ((unused[0], ()),) if unused else rewards[1:]  # same data: the rewards must change
        phases.append({"mixture": mixture, "rewards": rewards, "order": draw(st.sampled_from(["data_first", "rewards_first"]))})
    for phase in phases:
        phase["budget"] = draw(st.integers(1, 500))
    return phases


def _toml(phases: list[dict[str, object]], mark_terminal: bool) -> str:
    lines = [HEADER]
    for i, phase in enumerate(phases):
        lines += ["[[phases]]", f'name = "p{i}"', f"max_steps = {phase['budget']}"]
        if "order" in phase:
            lines.append(f'change_order = "{phase["order"]}"')
        if mark_terminal and i == len(phases) - 1:
            lines.append("terminal = true")
        mixture: Mix = phase["mixture"]  # type: ignore[assignment]
        for name, weight, piece in mixture:
            lines += ["[[phases.data]]", f'source = "{name}"', f"weight = {weight!r}"]
            if piece is not None:
                lines.append(f"subset = {{ start = {piece[0]}, end = {piece[1]} }}")
        rewards: Rewards = phase["rewards"]  # type: ignore[assignment]
        for name, params in rewards:
            lines += ["[[phases.rewards]]", f'name = "{name}"']
            if params:
                lines.append("params = { " + ", ".join(f"{k} = {v!r}" for k, v in params) + " }")
        lines += ["[[phases.criteria]]", 'metric = "extraction_rate"', 'comparison = ">="', "threshold = 0.9",
                  "[[phases.plateau]]", 'metric = "refusal_rate"']
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None)
@given(curricula(), st.booleans())
def test_every_plan_step_changes_exactly_one_factor(phases: list[dict[str, object]], mark_terminal: bool) -> None:
    policy = parse(_toml(phases, mark_terminal), "generated.toml")  # valid by construction: must parse
    plan = expand_plan(policy)
    assert plan[0].changes is Factor.NONE and plan[0].phase_index == 0
    assert [s.index for s in plan] == list(range(len(plan)))
    for before, after in zip(plan, plan[1:]):
        data_changed = before.mixture != after.mixture
        rewards_changed = before.rewards != after.rewards
        assert data_changed != rewards_changed, (before.label, after.label)
        assert after.changes is (Factor.DATA if data_changed else Factor.REWARDS)
        # no step brings in a new domain while it also changes the rewards
        assert not (after.mixture.domains(policy.sources) - before.mixture.domains(policy.sources)) or not rewards_changed
    for i, phase in enumerate(policy.phases):
        own = [s for s in plan if s.phase_index == i]
        assert (own[-1].mixture, own[-1].rewards) == (phase.mixture, phase.rewards)  # each phase ends as written
        if i:
            previous = policy.phases[i - 1]
            both = previous.mixture != phase.mixture and previous.rewards != phase.rewards
            assert [s.part for s in own] == (["a", "b"] if both else [""])
            if both:
                expected_first = Factor.DATA if phases[i]["order"] == "data_first" else Factor.REWARDS
                assert (own[0].changes, own[0].exit_gate, own[0].criteria) == (expected_first, ExitGate.SETTLE, ())
    assert [s.exit_gate for s in plan if s.exit_gate is not ExitGate.SETTLE] == (
        [ExitGate.PHASE_CRITERIA] * (len(policy.phases) - 1) + [ExitGate.TERMINAL])
