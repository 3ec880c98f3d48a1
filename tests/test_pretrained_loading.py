"""Pretrained Gemma3 loading, proved on small checkpoints in the real on-disk formats.

`policies/default.toml` loads Gemma3-1B-IT from a local Hugging Face safetensors directory or a
Kaggle/Orbax checkpoint, through Tunix's own loaders. Weights cannot be downloaded here, so a small
random Gemma3 is written in both layouts under the real parameter names (tests/gemma_formats.py),
loaded back through `load_pretrained`, and compared with the source: every parameter and the logits.
Real checkpoints ship in bfloat16 and the loader asks for float32, so both dtypes are written.
The wrong-path, wrong-kind and wrong-model cases must fail with an error naming the policy field
and the path, never a bare traceback from deep inside Tunix or Orbax.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx
from orbax import checkpoint as ocp
from safetensors import safe_open
from safetensors.numpy import save_file
from tunix.models.gemma3 import model as gemma3_model

from autocurriculum.exits import BadSetting
from autocurriculum.policy import ModelSpec
from autocurriculum.tunix_adapter.environment import make_mesh
from autocurriculum.tunix_adapter.model import (
    _pretrained_bundle,
    detect_weights_format,
    load_pretrained,
)
from autocurriculum.tunix_adapter.tokenizer import load_sentencepiece, train_sentencepiece

from .gemma_formats import (
    flat_params,
    huggingface_state_dict,
    random_gemma3,
    write_huggingface,
    write_orbax,
)

CONFIG = dataclasses.replace(
    gemma3_model.ModelConfig.gemma3_1b_it(),
    num_layers=2,
    embed_dim=64,
    hidden_dim=128,
    num_heads=2,
    head_dim=32,
    num_kv_heads=1,
    num_embed=300,
    param_dtype=jnp.float32,
)
DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}
WRITERS = {"safetensors": write_huggingface, "orbax": write_orbax}


@pytest.fixture(scope="module")
def source() -> gemma3_model.Gemma3:
    return random_gemma3(CONFIG, seed=1)


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(1, 1)


@pytest.fixture(scope="module")
def checkpoints(source, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(format, dtype) -> a directory holding `source` in that format and dtype."""
    root = tmp_path_factory.mktemp("gemma3")
    return {
        (kind, dtype): write(source, CONFIG, root / f"{kind}-{dtype}", dtype=DTYPES[dtype])
        for kind, write in WRITERS.items()
        for dtype in DTYPES
    }


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    return np.random.default_rng(7).integers(0, CONFIG.num_embed, size=(3, 12), dtype=np.int32)


def logits(model: gemma3_model.Gemma3, tokens: np.ndarray) -> np.ndarray:
    return np.asarray(_forward(model, jnp.asarray(tokens)))


@nnx.jit  # one compilation for every model of CONFIG rather than eager op-by-op dispatch
def _forward(model: gemma3_model.Gemma3, tokens: jax.Array) -> jax.Array:
    batch, length = tokens.shape
    positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
    causal = jnp.broadcast_to(jnp.tril(jnp.ones((length, length), bool)), (batch, length, length))
    output, _ = model(tokens, positions, None, causal)
    return output


def assert_same_model(loaded: gemma3_model.Gemma3, source: gemma3_model.Gemma3, tokens: np.ndarray) -> None:
    expected, got = flat_params(source), flat_params(loaded)
    assert set(got) == set(expected)
    for path, value in expected.items():
        assert got[path].dtype == np.float32, path
        np.testing.assert_array_equal(got[path], value, err_msg=str(path))
    np.testing.assert_allclose(logits(loaded, tokens), logits(source, tokens), rtol=1e-5, atol=1e-5)


# --- the writers produce the real layouts (so the round trip is not the loader agreeing with itself)


def test_safetensors_holds_the_hugging_face_gemma3_names_and_torch_linear_shapes(checkpoints) -> None:
    directory = checkpoints[("safetensors", "bfloat16")]
    d, n, k, h, f = CONFIG.embed_dim, CONFIG.num_heads, CONFIG.num_kv_heads, CONFIG.head_dim, CONFIG.hidden_dim
    per_layer = {  # Gemma3ForCausalLM: nn.Linear weights are (out_features, in_features)
        "input_layernorm.weight": (d,),
        "post_attention_layernorm.weight": (d,),
        "pre_feedforward_layernorm.weight": (d,),
        "post_feedforward_layernorm.weight": (d,),
        "self_attn.q_proj.weight": (n * h, d),
        "self_attn.k_proj.weight": (k * h, d),
        "self_attn.v_proj.weight": (k * h, d),
        "self_attn.o_proj.weight": (d, n * h),
        "self_attn.q_norm.weight": (h,),
        "self_attn.k_norm.weight": (h,),
        "mlp.gate_proj.weight": (f, d),
        "mlp.up_proj.weight": (f, d),
        "mlp.down_proj.weight": (d, f),
    }
    expected = {"model.embed_tokens.weight": (CONFIG.num_embed, d), "model.norm.weight": (d,)}
    for layer in range(CONFIG.num_layers):
        expected.update({f"model.layers.{layer}.{name}": shape for name, shape in per_layer.items()})
    with safe_open(str(directory / "model.safetensors"), framework="numpy") as handle:
        assert handle.metadata() == {"format": "pt"}
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        assert handle.get_slice("model.embed_tokens.weight").get_dtype() == "BF16"
    assert shapes == expected
    assert json.loads((directory / "config.json").read_text())["architectures"] == ["Gemma3ForCausalLM"]


def test_q_proj_rows_are_head_major_like_a_torch_linear(source) -> None:
    # HF computes q = x @ q_proj.weight.T and views it as (..., heads, head_dim): row n*head_dim + h.
    x = np.random.default_rng(3).normal(size=(5, CONFIG.embed_dim)).astype(np.float32)
    q_proj = huggingface_state_dict(source, CONFIG)["model.layers.1.self_attn.q_proj.weight"]
    q_einsum = flat_params(source)[("layers", 1, "attn", "q_einsum", "w")]  # (heads, embed, head_dim)
    torch_style = (x @ q_proj.T).reshape(5, CONFIG.num_heads, CONFIG.head_dim)
    np.testing.assert_allclose(torch_style, np.einsum("td,ndh->tnh", x, q_einsum), rtol=1e-5, atol=1e-5)


def test_orbax_checkpoint_holds_the_upstream_gemma_module_paths(checkpoints) -> None:
    restored = ocp.StandardCheckpointer().restore(checkpoints[("orbax", "bfloat16")].resolve())
    layer = {
        "attn/q_einsum": {"w": (CONFIG.num_heads, CONFIG.embed_dim, CONFIG.head_dim)},
        "attn/kv_einsum": {"w": (2, CONFIG.num_kv_heads, CONFIG.embed_dim, CONFIG.head_dim)},
        "attn/attn_vec_einsum": {"w": (CONFIG.num_heads, CONFIG.head_dim, CONFIG.embed_dim)},
        "attn/_query_norm": {"scale": (CONFIG.head_dim,)},
        "attn/_key_norm": {"scale": (CONFIG.head_dim,)},
        "mlp/gating_einsum": {"w": (2, CONFIG.hidden_dim, CONFIG.embed_dim)},
        "mlp/linear": {"w": (CONFIG.hidden_dim, CONFIG.embed_dim)},
        **{
            norm: {"scale": (CONFIG.embed_dim,)}
            for norm in ("pre_attention_norm", "post_attention_norm", "pre_ffw_norm", "post_ffw_norm")
        },
    }
    expected = {
        "transformer/embedder": {"input_embedding": (CONFIG.num_embed, CONFIG.embed_dim)},
        "transformer/final_norm": {"scale": (CONFIG.embed_dim,)},
        **{
            f"transformer/layer_{i}/{module}": leaves
            for i in range(CONFIG.num_layers)
            for module, leaves in layer.items()
        },
    }
    got = {module: {name: tuple(value.shape) for name, value in leaves.items()} for module, leaves in restored.items()}
    assert got == expected
    assert restored["transformer/embedder"]["input_embedding"].dtype == ml_dtypes.bfloat16


# --- round trips through load_pretrained


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", WRITERS)
def test_load_pretrained_gives_back_the_source_model(kind, dtype, source, checkpoints, mesh, tokens) -> None:
    directory = checkpoints[(kind, dtype)]
    assert detect_weights_format(directory) == kind
    assert_same_model(load_pretrained(CONFIG, directory, "", mesh), source, tokens)


@pytest.mark.parametrize("kind", WRITERS)
def test_an_explicit_weights_format_that_matches_loads_too(kind, source, checkpoints, mesh, tokens) -> None:
    assert_same_model(load_pretrained(CONFIG, checkpoints[(kind, "float32")], kind, mesh), source, tokens)


def test_the_comparison_catches_a_swapped_tensor(source, mesh, tokens, tmp_path) -> None:
    # k_proj and v_proj have the same shape: a loader (or writer) that swapped them would only be
    # caught by values, so prove the comparison sees it.
    tensors = huggingface_state_dict(source, CONFIG)
    k, v = "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight"
    tensors[k], tensors[v] = tensors[v], tensors[k]
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded = load_pretrained(CONFIG, tmp_path, "", mesh)
    with pytest.raises(AssertionError):
        assert_same_model(loaded, source, tokens)
    assert not np.allclose(logits(loaded, tokens), logits(source, tokens), rtol=1e-3, atol=1e-3)


# --- errors name the policy field and the path


def assert_names(error: pytest.ExceptionInfo, field: str, path: Path) -> None:
    message = str(error.value)
    assert re.search(rf"\b{re.escape(field)}\b", message), message
    assert str(path) in message, message


def test_a_missing_path_names_model_weights(mesh, tmp_path) -> None:
    missing = tmp_path / "gemma3-1b-it"
    with pytest.raises(FileNotFoundError) as error:
        load_pretrained(CONFIG, missing, "", mesh)
    assert_names(error, "model.weights", missing)


@pytest.mark.parametrize("weights_format", ["", "orbax", "safetensors"])
def test_an_empty_directory_names_model_weights(weights_format, mesh, tmp_path) -> None:
    with pytest.raises(ValueError) as error:
        load_pretrained(CONFIG, tmp_path, weights_format, mesh)
    assert_names(error, "model.weights", tmp_path)


def test_detect_weights_format_rejects_a_directory_of_something_else(tmp_path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError) as error:
        detect_weights_format(tmp_path)
    assert_names(error, "model.weights", tmp_path)


def test_an_unknown_weights_format_names_the_field_and_the_path(checkpoints, mesh) -> None:
    directory = checkpoints[("safetensors", "float32")]
    with pytest.raises(ValueError) as error:
        load_pretrained(CONFIG, directory, "gguf", mesh)
    assert_names(error, "model.weights_format", directory)
    assert "'gguf'" in str(error.value)


@pytest.mark.parametrize("declared, actual", [("orbax", "safetensors"), ("safetensors", "orbax")])
def test_a_weights_format_that_contradicts_the_directory_says_what_it_found(
    declared, actual, checkpoints, mesh
) -> None:
    directory = checkpoints[(actual, "float32")]
    with pytest.raises(ValueError) as error:
        load_pretrained(CONFIG, directory, declared, mesh)
    assert_names(error, "model.weights_format", directory)
    assert actual in str(error.value).replace(f"'{declared}'", "")


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("change", [{"hidden_dim": 96}, {"num_layers": 3}, {"num_embed": 512}])
def test_weights_of_another_model_size_are_refused(kind, change, checkpoints, mesh) -> None:
    # e.g. model.preset = "gemma3_1b_it" pointed at gemma3-270m weights: refuse, naming the path,
    # rather than build a model whose arrays do not fit its config.
    directory = checkpoints[(kind, "float32")]
    with pytest.raises(ValueError) as error:
        load_pretrained(dataclasses.replace(CONFIG, **change), directory, "", mesh)
    assert_names(error, "model.weights", directory)
    assert "model.preset" in str(error.value)


def test_pretrained_bundle_with_no_weights_names_model_weights(mesh, tmp_path) -> None:
    spec = ModelSpec(preset="gemma3_1b_it", weights="", tokenizer=str(tmp_path / "tokenizer.model"))
    with pytest.raises(BadSetting, match=r"model\.weights: empty"):  # a setting to fix: exit 78, not 66
        _pretrained_bundle(spec, tmp_path, mesh)


def test_pretrained_bundle_resolves_a_relative_weights_path_and_names_it(mesh, tmp_path) -> None:
    corpus = [f"question {i} has the answer {i * 7}" for i in range(200)]
    tokenizer = train_sentencepiece(corpus, 64, tmp_path / "tok.model")
    spec = ModelSpec(preset="gemma3_1b_it", weights="models/gemma3-1b-it", tokenizer=str(tokenizer))
    with pytest.raises(FileNotFoundError) as error:
        _pretrained_bundle(spec, tmp_path, mesh)
    assert_names(error, "model.weights", tmp_path / "models" / "gemma3-1b-it")


def test_load_sentencepiece_names_model_tokenizer_for_a_missing_file(tmp_path) -> None:
    missing = tmp_path / "tokenizer.model"
    with pytest.raises(FileNotFoundError) as error:
        load_sentencepiece(missing, "model.tokenizer")
    assert_names(error, "model.tokenizer", missing)


def test_load_sentencepiece_names_model_tokenizer_for_a_file_of_another_kind(checkpoints) -> None:
    # a common slip: pointing model.tokenizer at the Hugging Face config.json (or tokenizer.json)
    not_sentencepiece = checkpoints[("safetensors", "float32")] / "config.json"
    with pytest.raises(ValueError) as error:
        load_sentencepiece(not_sentencepiece, "model.tokenizer")
    assert_names(error, "model.tokenizer", not_sentencepiece)


def test_a_gguf_file_is_detected_and_a_directory_of_one_is_not_taken_for_it(tmp_path) -> None:
    weights = tmp_path / "gemma-3-270m.gguf"
    weights.write_bytes(b"GGUF")
    assert detect_weights_format(weights) == "gguf"
    with pytest.raises(ValueError) as error:
        detect_weights_format(tmp_path)  # the directory holding it is neither orbax nor safetensors
    assert_names(error, "model.weights", tmp_path)


def test_an_unreadable_gguf_names_model_weights(mesh, tmp_path) -> None:
    weights = tmp_path / "broken.gguf"
    weights.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError) as error:
        load_pretrained(CONFIG, weights, "gguf", mesh)
    assert_names(error, "model.weights", weights)
