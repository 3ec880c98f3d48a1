"""Warm-start examples: the behaviour shares the policy asks for, deterministic per seed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from autocurriculum.behaviour_mix import REFUSAL, tokenizer_corpus, warm_start_batches
from autocurriculum.policy import WarmStartSpec


@dataclass(frozen=True)
class FakeItem:
    prompt: str
    answer: str
    solution: str


ITEMS = [FakeItem(f"Question: {a} + {a}?\nAnswer:", str(2 * a), f"{a} + {a} = {2 * a}") for a in range(50)]


def test_targets_follow_the_requested_shares_within_binomial_noise() -> None:
    spec = WarmStartSpec(batch_size=100, freeform_share=0.6, contract_share=0.3)
    targets = [t for _, t in itertools.chain.from_iterable(itertools.islice(warm_start_batches(ITEMS, spec, 1), 50))]
    n = len(targets)
    contract = sum(t.startswith("<reasoning>") for t in targets) / n
    refusal = sum(t == REFUSAL for t in targets) / n
    freeform = sum("The answer is" in t and not t.startswith("<") for t in targets) / n
    assert n == 5000
    assert contract == pytest.approx(0.3, abs=0.03)
    assert refusal == pytest.approx(0.1, abs=0.02)
    assert freeform == pytest.approx(0.6, abs=0.03)


def test_contract_targets_carry_the_gold_answer_in_the_tags() -> None:
    spec = WarmStartSpec(batch_size=64, freeform_share=0.0, contract_share=1.0)
    batch = next(warm_start_batches(ITEMS, spec, 0))
    for prompt, target in batch:
        item = next(i for i in ITEMS if i.prompt == prompt)
        assert target == f"<reasoning>{item.solution}</reasoning><answer>{item.answer}</answer>"


def test_batches_are_deterministic_per_seed() -> None:
    spec = WarmStartSpec(batch_size=8)
    first = list(itertools.islice(warm_start_batches(ITEMS, spec, 3), 5))
    again = list(itertools.islice(warm_start_batches(ITEMS, spec, 3), 5))
    other = list(itertools.islice(warm_start_batches(ITEMS, spec, 4), 5))
    assert first == again
    assert first != other


def test_no_items_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no items"):
        next(warm_start_batches([], WarmStartSpec(), 0))


def test_corpus_holds_every_target_shape() -> None:
    corpus = tokenizer_corpus(ITEMS, seed=0)
    assert any(line.endswith(REFUSAL) for line in corpus)
    assert any("<answer>" in line for line in corpus)
    assert any("The answer is" in line for line in corpus)
