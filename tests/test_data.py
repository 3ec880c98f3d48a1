"""Data: real GSM8K through `datasets`, subsets, generators, and a stream that resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.data import (
    DataError,
    MixtureStream,
    apply_subset,
    load_source,
    pool_key,
    render_prompt,
    run_program,
    to_tunix_batch,
)
from autocurriculum.policy import Mixture, MixtureComponent, SourceSpec, SubsetSpec

from .conftest import GSM8K, REPO

GSM = SourceSpec(name="gsm8k", kind="gsm8k", domain="math", split="train", path=str(GSM8K))


@pytest.fixture(scope="module")
def gsm8k_items():
    return load_source(GSM, seed=0, base_dir=REPO)


def test_gsm8k_loads_locally_through_datasets_with_golds_after_the_marker(gsm8k_items) -> None:
    assert len(gsm8k_items) == 7473
    first = json.loads((GSM8K / "train.jsonl").open().readline())
    assert gsm8k_items[0].question == first["question"]
    assert gsm8k_items[0].answer == first["answer"].split("####")[1].strip()
    assert "<answer>" in gsm8k_items[0].prompt and gsm8k_items[0].domain == "math"
    test = load_source(SourceSpec("t", "gsm8k", "math", split="test", path=str(GSM8K)), seed=0, base_dir=REPO)
    assert len(test) == 1319


def test_no_local_path_and_no_network_names_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"sources\.gsm8k\.path"):
        load_source(SourceSpec("gsm8k", "gsm8k", "math", hub_name="openai/gsm8k", hub_config="main"), seed=0, base_dir=REPO)


def test_subset_slices_a_seeded_shuffle(gsm8k_items) -> None:
    part = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.25), seed=1, source="gsm8k")
    again = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.25), seed=1, source="gsm8k")
    other = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.25), seed=2, source="gsm8k")
    rest = apply_subset(gsm8k_items, SubsetSpec(0.25, 1.0), seed=1, source="gsm8k")
    assert len(part) == int(0.25 * 7473)
    assert part == again and part != other
    assert not {i.id for i in part} & {i.id for i in rest}
    assert len(part) + len(rest) == 7473


def test_short_question_filters(gsm8k_items) -> None:
    short = apply_subset(gsm8k_items, SubsetSpec(max_question_chars=150), seed=0, source="gsm8k")
    assert short and all(len(i.question) <= 150 for i in short)
    assert len(short) < len(gsm8k_items)
    words = apply_subset(gsm8k_items, SubsetSpec(max_question_tokens=30), seed=0, source="gsm8k")
    assert words and all(len(i.question.split()) <= 30 for i in words)
    with pytest.raises(DataError, match="empty"):
        apply_subset(gsm8k_items, SubsetSpec(max_question_chars=5), seed=0, source="gsm8k")


def test_code_items_answers_match_a_fresh_execution(tmp_path: Path) -> None:
    items = load_source(SourceSpec("code", "code", "code", options={"count": 120}), seed=3, base_dir=REPO, cache_dir=tmp_path)
    assert items and all(i.domain == "code" for i in items)
    for item in items[:15]:
        program = item.question.split("\n", 1)[1]
        assert run_program(program).rstrip("\n") == item.answer
    cached = load_source(SourceSpec("code", "code", "code", options={"count": 120}), seed=3, base_dir=REPO, cache_dir=tmp_path)
    assert cached == items


def test_generated_test_split_is_disjoint_from_training() -> None:
    spec = SourceSpec("a", "arithmetic", "math", options={"count": 1000})
    train = load_source(spec, seed=0, base_dir=REPO)
    test = load_source(SourceSpec("a", "arithmetic", "math", split="test", options={"count": 1000}), seed=0, base_dir=REPO)
    assert len(train) + len(test) == 1000
    assert not {i.id for i in train} & {i.id for i in test}
    qa = load_source(SourceSpec("qa", "qa", "qa", options={"count": 200}), seed=0, base_dir=REPO)
    assert all(i.answer for i in qa)


def test_bad_data_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{not json\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: not a JSON line"):
        load_source(SourceSpec("g", "gsm8k", "math", path=str(tmp_path)), seed=0, base_dir=REPO)
    bad.write_text('{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(DataError, match="item 0.*####"):
        load_source(SourceSpec("g", "gsm8k", "math", path=str(tmp_path)), seed=0, base_dir=REPO)
    bad.write_text('{"prompt": "q", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match=r"fields\.question: column 'question' not in the dataset"):
        load_source(SourceSpec("g", "gsm8k", "math", path=str(tmp_path)), seed=0, base_dir=REPO)
    with pytest.raises(DataError, match=r"sources\.g\.path: no file"):
        load_source(SourceSpec("g", "gsm8k", "math", path=str(tmp_path / "nowhere")), seed=0, base_dir=REPO)


def pools_and_mixtures():
    a = load_source(SourceSpec("a", "arithmetic", "math", options={"count": 400}), seed=0, base_dir=REPO)
    q = load_source(SourceSpec("qa", "qa", "qa", options={"count": 300}), seed=0, base_dir=REPO)
    whole_a, slice_a = MixtureComponent("a", 1.0), MixtureComponent("a", 1.0, SubsetSpec(0.0, 0.3))
    pools = {pool_key(whole_a): a, pool_key(slice_a): apply_subset(a, SubsetSpec(0.0, 0.3), 0, "a"),
             pool_key(MixtureComponent("qa", 1.0)): q}
    mixtures = [Mixture((slice_a,)), Mixture((whole_a,)),
                Mixture((MixtureComponent("a", 0.75), MixtureComponent("qa", 0.25)))]
    return pools, mixtures


def test_mixture_proportions_within_binomial_tolerance() -> None:
    pools, mixtures = pools_and_mixtures()
    stream = MixtureStream(pools, mixtures[2], seed=5)
    draws = [item.domain for _ in range(100) for item in stream.next_batch(100)]
    share = draws.count("qa") / len(draws)
    assert abs(share - 0.25) < 4 * (0.25 * 0.75 / 10_000) ** 0.5


def test_no_repeat_within_an_epoch_and_a_new_epoch_is_reported() -> None:
    pools, mixtures = pools_and_mixtures()
    epochs: list[tuple[str, int]] = []
    stream = MixtureStream(pools, mixtures[0], seed=1, on_epoch=lambda source, epoch: epochs.append((source, epoch)))
    size = len(pools[pool_key(mixtures[0].components[0])])
    first = [i.id for i in stream.next_batch(size)]
    assert len(set(first)) == size and not epochs
    stream.next_batch(1)
    assert epochs == [(pool_key(mixtures[0].components[0]), 1)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(0, 2)), min_size=1, max_size=8), st.integers(0, 7))
def test_save_restore_continue_gives_the_identical_sequence(segments, cut) -> None:
    pools, mixtures = pools_and_mixtures()
    original = MixtureStream(pools, mixtures[segments[0][1]], seed=9)
    reference: list[str] = []
    saved = None
    cut = min(cut, len(segments) - 1)
    for index, (count, mixture) in enumerate(segments):
        if index == cut:
            saved = (json.loads(json.dumps(original.state())), original.mixture)
            reference_after: list[str] = []
        original.set_mixture(mixtures[mixture])
        ids = [i.id for i in original.next_batch(count)]
        reference.extend(ids)
        if index >= cut:
            reference_after.extend(ids)
    assert saved is not None
    state, mixture_at_cut = saved
    resumed = MixtureStream(pools, mixture_at_cut, seed=9)
    resumed.restore(state)
    replayed: list[str] = []
    for count, mixture in segments[cut:]:
        resumed.set_mixture(mixtures[mixture])
        replayed.extend(i.id for i in resumed.next_batch(count))
    assert replayed == reference_after


def test_tunix_batch_is_numpy_arrays() -> None:
    pools, mixtures = pools_and_mixtures()
    batch = to_tunix_batch(MixtureStream(pools, mixtures[2], seed=0).next_batch(4))
    assert set(batch) == {"prompts", "answer", "domain", "id"}
    assert all(hasattr(v, "dtype") and len(v) == 4 for v in batch.values())


def test_prompt_templates_carry_the_contract() -> None:
    assert "<answer>" in render_prompt("2+2?", "plain")
    assert render_prompt("2+2?", "gemma_chat").startswith("<start_of_turn>user")
    with pytest.raises(DataError, match="prompt_template"):
        render_prompt("x", "chatml")
