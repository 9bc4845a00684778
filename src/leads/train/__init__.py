"""Fine-tuning recipe: supervised fine-tuning (LoRA or full) on leads' instruction data.

``from leads.train import SFTConfig, load_config, main``; ``main(load_config("recipe.yaml"))``
trains, measures and exports (a Hugging Face folder for vLLM, GGUF for llama.cpp). Needs the
``train`` extra (torch, transformers, peft); importing this package does not import them.
"""

from typing import Any

from leads.train.config import ConfigError, SFTConfig, load_config

__all__ = ["ConfigError", "SFTConfig", "load_config", "main"]


def main(config: SFTConfig, **kwargs: Any) -> Any:
    """Run one fine-tuning job (:func:`leads.train.sft.main`)."""
    from leads.train.sft import main as run

    return run(config, **kwargs)
