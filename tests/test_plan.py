"""Property: every expanded plan, from any valid policy, changes exactly one factor per step."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autocurriculum.policy import Factor, PolicyError, expand_plan, parse

HEADER = """
[sources.a]
kind = "arithmetic"
domain = "math"
[sources.b]
kind = "arithmetic"
domain = "math"
options = { steps = 2 }
[sources.code]
kind = "code"
domain = "code"
"""
MIXTURES = [
    [("a", 1.0, "{ start = 0.0, end = 0.3 }")],
    [("a", 1.0, None)],
    [("b", 1.0, None)],
    [("a", 0.5, None), ("b", 0.5, None)],
    [("a", 0.5, None), ("code", 0.5, None)],
]
REWARD_SETS = [
    ["punish_refusal", "strict_format_gate", "light_length_penalty"],
    ["punish_refusal", "strict_format_gate", "check_answer_strict", "penalize_length"],
    ["strict_format_gate", "check_answer_strict"],
]


def phase_text(index: int, mixture: int, rewards: int, order: str, last: bool) -> str:
    lines = ["[[phases]]", f'name = "p{index}"', "max_steps = 50", f'change_order = "{order}"']
    if last:
        lines.append("terminal = true")
    for source, weight, subset in MIXTURES[mixture]:
        lines += ["[[phases.data]]", f'source = "{source}"', f"weight = {weight}"]
        if subset:
            lines.append(f"subset = {subset}")
    for name in REWARD_SETS[rewards]:
        lines += ["[[phases.rewards]]", f'name = "{name}"']
    lines += ["[[phases.criteria]]", 'metric = "extraction_rate"', 'comparison = ">="', "threshold = 0.9"]
    lines += ["[[phases.plateau]]", 'metric = "extraction_rate"']
    return "\n".join(lines)


phases_strategy = st.lists(
    st.tuples(st.integers(0, len(MIXTURES) - 1), st.integers(0, len(REWARD_SETS) - 1),
              st.sampled_from(["data_first", "rewards_first"])),
    min_size=1, max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(phases_strategy)
def test_every_plan_step_changes_exactly_one_factor(phases: list[tuple[int, int, str]]) -> None:
    text = HEADER + "\n".join(phase_text(i, m, r, o, i == len(phases) - 1) for i, (m, r, o) in enumerate(phases))
    try:
        policy = parse(text, "generated.toml")
    except PolicyError:
        assume(False)
        return
    plan = expand_plan(policy)
    assert plan[0].changes is Factor.NONE
    assert [s.index for s in plan] == list(range(len(plan)))
    for before, after in zip(plan, plan[1:]):
        data_changed = before.mixture != after.mixture
        rewards_changed = before.rewards != after.rewards
        assert data_changed != rewards_changed, (before.label, after.label)
        assert after.changes is (Factor.DATA if data_changed else Factor.REWARDS)
    # the plan ends in each phase's own mixture and reward set
    for phase in policy.phases:
        last = [s for s in plan if s.phase == phase.name][-1]
        assert (last.mixture, last.rewards) == (phase.mixture, phase.rewards)
    # a split transition has exactly two halves, the first of which must settle
    for phase in policy.phases[1:]:
        halves = [s.part for s in plan if s.phase == phase.name]
        assert halves in ([""], ["a", "b"])
