"""Write a Gemma3 model in the two on-disk layouts users bring: Hugging Face safetensors and Kaggle Orbax.

Real Gemma3 weights cannot be downloaded on these machines, yet `policies/default.toml` loads them
from a local path with Tunix's own loaders. These writers produce small checkpoints in the same
layouts, under the real parameter names, so `tunix_adapter.model.load_pretrained` is tested against
the formats and not against itself. Each writer is the inverse of the Tunix loader it feeds:

- Hugging Face (`params_safetensors._get_key_and_transform_mapping` and `_make_preprocess_fn`):
  `model.layers.{i}.self_attn.q_proj.weight` and friends, every projection a torch Linear weight of
  shape (out_features, in_features), heads flattened head-major (row n*head_dim + h);
- upstream gemma / Kaggle Orbax (`params.map_from_upstream_checkpoint`): a flat dict keyed by the
  legacy linen module path (`transformer/layer_{i}/attn/q_einsum`) holding {param_name: array}, gate
  and up projections stacked in `mlp/gating_einsum`, saved with orbax's StandardCheckpointer.

Test code only: nothing here is used by the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import nnx
from orbax import checkpoint as ocp
from safetensors.numpy import save_file
from tunix.models.gemma3 import model as gemma3_model

Params = dict[tuple[object, ...], np.ndarray]


def flat_params(model: nnx.Module) -> Params:
    """The model's parameters as numpy arrays keyed by their nnx path, e.g. ('layers', 0, 'attn', ...)."""
    state = nnx.state(model, nnx.Param)
    return {tuple(path): np.asarray(variable.get_value()) for path, variable in nnx.to_flat_state(state)}


def random_gemma3(config: gemma3_model.ModelConfig, seed: int) -> gemma3_model.Gemma3:
    """A Gemma3 whose every parameter (norm scales included, which Gemma3 starts at zero) is random.

    Distinct values everywhere mean a loader that swaps two tensors of the same shape (k for v, gate
    for up, pre for post norm) produces a visibly different model. Values are rounded to bfloat16,
    the dtype real Gemma3 checkpoints ship in, so writing them as bfloat16 loses nothing. Built
    from abstract shapes: running Gemma3's initialisers would cost seconds for values thrown away.
    """
    model = nnx.eval_shape(lambda: gemma3_model.Gemma3(config, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)
    state = nnx.state(model, nnx.Param)
    for _, variable in nnx.to_flat_state(state):
        shape = variable.get_value().shape
        value = rng.normal(0.0, 0.5, shape).astype(ml_dtypes.bfloat16).astype(np.float32)
        variable.set_value(jnp.asarray(value))
    nnx.update(model, state)
    return model


def _attention_qkv(params: Params, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q as (num_heads, embed, head_dim); k and v as (num_kv_heads, embed, head_dim).

    Every Gemma3 size has fewer kv heads than query heads (grouped-query attention), so the model
    holds q_einsum and kv_einsum, never the fused qkv_einsum Tunix uses when the counts are equal.
    """
    kv = params[("layers", layer, "attn", "kv_einsum", "w")]
    return params[("layers", layer, "attn", "q_einsum", "w")], kv[0], kv[1]


def _torch_linear_from_heads(w: np.ndarray) -> np.ndarray:
    """(heads, embed, head_dim) -> torch Linear weight (heads*head_dim, embed)."""
    heads, embed, head_dim = w.shape
    return np.ascontiguousarray(w.transpose(1, 0, 2).reshape(embed, heads * head_dim).T)


# Hugging Face norm names -> the nnx module they feed. Both RMSNorms apply x * (1 + w): values carry over.
HF_LAYER_NORMS = {
    "input_layernorm": ("pre_attention_norm",),
    "post_attention_layernorm": ("post_attention_norm",),
    "pre_feedforward_layernorm": ("pre_ffw_norm",),
    "post_feedforward_layernorm": ("post_ffw_norm",),
    "self_attn.q_norm": ("attn", "_query_norm"),
    "self_attn.k_norm": ("attn", "_key_norm"),
}


def huggingface_state_dict(model: gemma3_model.Gemma3, config: gemma3_model.ModelConfig) -> dict[str, np.ndarray]:
    """The model's weights under the names and shapes of a Hugging Face Gemma3ForCausalLM checkpoint."""
    params = flat_params(model)
    tensors = {
        "model.embed_tokens.weight": params[("embedder", "input_embedding")],
        "model.norm.weight": params[("final_norm", "scale")],
    }
    for layer in range(config.num_layers):
        prefix = f"model.layers.{layer}."
        q, k, v = _attention_qkv(params, layer)
        tensors[prefix + "self_attn.q_proj.weight"] = _torch_linear_from_heads(q)
        tensors[prefix + "self_attn.k_proj.weight"] = _torch_linear_from_heads(k)
        tensors[prefix + "self_attn.v_proj.weight"] = _torch_linear_from_heads(v)
        out = params[("layers", layer, "attn", "attn_vec_einsum", "w")]  # (heads, head_dim, embed)
        tensors[prefix + "self_attn.o_proj.weight"] = np.ascontiguousarray(out.reshape(-1, out.shape[-1]).T)
        for name in ("gate_proj", "up_proj", "down_proj"):
            kernel = params[("layers", layer, "mlp", name, "kernel")]  # (in, out): torch stores (out, in)
            tensors[prefix + f"mlp.{name}.weight"] = np.ascontiguousarray(kernel.T)
        for hf_name, module in HF_LAYER_NORMS.items():
            tensors[prefix + f"{hf_name}.weight"] = params[("layers", layer, *module, "scale")]
    return tensors


def write_huggingface(
    model: gemma3_model.Gemma3, config: gemma3_model.ModelConfig, directory: Path, dtype: type = np.float32
) -> Path:
    """A Hugging Face model directory: model.safetensors (torch metadata) beside a config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.asarray(value, dtype=dtype) for name, value in huggingface_state_dict(model, config).items()}
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(_hf_config_json(config))
    return directory


def _hf_config_json(config: gemma3_model.ModelConfig) -> str:
    """Tunix's loader ignores it; it is there because a real model directory has one."""
    return json.dumps(
        {
            "architectures": ["Gemma3ForCausalLM"],
            "model_type": "gemma3_text",
            "hidden_size": config.embed_dim,
            "intermediate_size": config.hidden_dim,
            "num_hidden_layers": config.num_layers,
            "num_attention_heads": config.num_heads,
            "num_key_value_heads": config.num_kv_heads,
            "head_dim": config.head_dim,
            "vocab_size": config.num_embed,
            "sliding_window": config.sliding_window_size,
            "torch_dtype": "float32",
        },
        indent=2,
    )


# Upstream norm modules inside transformer/layer_{i}/, each holding a 'scale'; the nnx names match.
UPSTREAM_LAYER_NORMS = (
    "pre_attention_norm",
    "post_attention_norm",
    "pre_ffw_norm",
    "post_ffw_norm",
    "attn/_query_norm",
    "attn/_key_norm",
)


def upstream_params(model: gemma3_model.Gemma3, config: gemma3_model.ModelConfig) -> dict[str, dict[str, np.ndarray]]:
    """The model's weights in the upstream gemma (Kaggle) layout: {'transformer/<module>': {param: array}}."""
    params = flat_params(model)
    tree: dict[str, dict[str, np.ndarray]] = {
        "transformer/embedder": {"input_embedding": params[("embedder", "input_embedding")]},
        "transformer/final_norm": {"scale": params[("final_norm", "scale")]},
    }
    for layer in range(config.num_layers):
        prefix = f"transformer/layer_{layer}/"
        q, k, v = _attention_qkv(params, layer)
        tree[prefix + "attn/q_einsum"] = {"w": q}  # (heads, embed, head_dim)
        tree[prefix + "attn/kv_einsum"] = {"w": np.stack([k, v])}  # (2, kv_heads, embed, head_dim)
        out = params[("layers", layer, "attn", "attn_vec_einsum", "w")]
        tree[prefix + "attn/attn_vec_einsum"] = {"w": out}  # (heads, head_dim, embed)
        for norm in UPSTREAM_LAYER_NORMS:
            module = tuple(norm.split("/"))
            tree[prefix + norm] = {"scale": params[("layers", layer, *module, "scale")]}
        gate = params[("layers", layer, "mlp", "gate_proj", "kernel")]  # (embed, hidden)
        up = params[("layers", layer, "mlp", "up_proj", "kernel")]
        tree[prefix + "mlp/gating_einsum"] = {"w": np.stack([gate.T, up.T])}  # (2, hidden, embed)
        tree[prefix + "mlp/linear"] = {"w": params[("layers", layer, "mlp", "down_proj", "kernel")]}  # (hidden, embed)
    return tree


def write_orbax(
    model: gemma3_model.Gemma3, config: gemma3_model.ModelConfig, directory: Path, dtype: type = np.float32
) -> Path:
    """An Orbax checkpoint of the upstream tree, written the way the Kaggle checkpoints are read back."""
    tree = {
        module: {name: np.asarray(value, dtype=dtype) for name, value in leaves.items()}
        for module, leaves in upstream_params(model, config).items()
    }
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory.resolve(), tree)
    checkpointer.wait_until_finished()
    checkpointer.close()
    return directory
