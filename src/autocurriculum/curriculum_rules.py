"""The curriculum's transition rules, checked on a policy before anything runs.

The controller checks them again at run time (decide()); here they are refused with the file, the
TOML path and the value:
- the first phase trains a single domain ("do NOT mix domains before phase 1 stabilises"), so a new
  domain can only appear after the first phase's criteria hold;
- a phase that introduces a domain keeps the previous phase's reward set (names and parameters);
- consecutive phases differ; every phase that can advance has a criterion AND a plateau test;
- only the last phase may say `terminal = true`; when none does, the last phase is terminal;
- a per-domain metric names a domain that some phase's mixture trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from autocurriculum.observation import split_domain_metric
from autocurriculum.spec import GuardSpec, PhaseSpec, PolicyError, SourceSpec, same_reward_set
from autocurriculum.toml_table import did_you_mean


def settle_phases(phases: tuple[PhaseSpec, ...]) -> tuple[PhaseSpec, ...]:
    """The last phase is terminal when none says so; a reordered copy of the previous reward set is that set."""
    settled = list(phases)
    if not any(p.terminal for p in settled):
        settled[-1] = dataclasses.replace(settled[-1], terminal=True)
    for i in range(1, len(settled)):
        if settled[i].rewards != settled[i - 1].rewards and same_reward_set(settled[i].rewards, settled[i - 1].rewards):
            settled[i] = dataclasses.replace(settled[i], rewards=settled[i - 1].rewards)
    return tuple(settled)


def check_domain_metrics(file: str, phases: tuple[PhaseSpec, ...], guards: tuple[GuardSpec, ...],
                          sources: Mapping[str, SourceSpec]) -> None:
    """A per-domain metric (`<metric>:<d>`, `domain_compliance:<d>`) must name a domain some phase's mixture trains."""
    trained = frozenset().union(*(p.mixture.domains(sources) for p in phases))
    named: list[tuple[str, str]] = [(f"judgement.guards[{i}].metric", g.metric) for i, g in enumerate(guards)]
    for i, phase in enumerate(phases):
        named += [(f"phases[{i}].criteria[{j}].metric", c.metric) for j, c in enumerate(phase.criteria)]
        named += [(f"phases[{i}].plateau[{j}].metric", p.metric) for j, p in enumerate(phase.plateau)]
    for path, metric in named:
        split = split_domain_metric(metric)
        if split is not None and split[1] not in trained:
            domain = split[1]
            raise PolicyError(file, path, metric, f"no phase's mixture uses domain {domain!r} "
                              f"(trained domains: {', '.join(sorted(trained))})", did_you_mean(domain, trained))


def check_rules(file: str, phases: tuple[PhaseSpec, ...], sources: Mapping[str, SourceSpec]) -> None:
    """The curriculum's transition rules, checked before anything runs (decide() checks them again)."""
    names = [p.name for p in phases]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise PolicyError(file, f"phases[{i}].name", name, f"phase names must be unique (phases[{names.index(name)}] "
                              "has the same name)")
    for i, phase in enumerate(phases):
        if phase.terminal and i != len(phases) - 1:
            raise PolicyError(file, f"phases[{i}].terminal", True, "only the last phase can be terminal")
        if i < len(phases) - 1:
            for key, entries, what in (("criteria", phase.criteria, "criterion"), ("plateau", phase.plateau, "plateau test")):
                if not entries:
                    raise PolicyError(file, f"phases[{i}].{key}", [], f"phase {phase.name!r} can advance, so it needs at "
                                      f"least one {what} (advance only on criteria AND plateau)")
    first_domains = phases[0].mixture.domains(sources)
    if len(first_domains) != 1:
        raise PolicyError(file, "phases[0].data", sorted(first_domains),
                          "the first phase trains one domain: no domain mixing before phase 1 has stabilised")
    for i in range(1, len(phases)):
        previous, phase = phases[i - 1], phases[i]
        new_domains = phase.mixture.domains(sources) - previous.mixture.domains(sources)
        same_data = previous.mixture == phase.mixture
        same_rewards = same_reward_set(previous.rewards, phase.rewards)
        if same_data and same_rewards:
            raise PolicyError(file, f"phases[{i}]", phase.name, f"changes nothing from phase {previous.name!r} "
                              "(same data mixture and same reward set)")
        if new_domains and not same_rewards:
            raise PolicyError(file, f"phases[{i}].rewards", [r.name for r in phase.rewards],
                              f"phase {phase.name!r} introduces domains {sorted(new_domains)} and also changes the reward "
                              f"set of phase {previous.name!r}: rewards must not change when domains are introduced",
                              f"keep phase {previous.name!r}'s rewards here and change them in a phase of their own")
