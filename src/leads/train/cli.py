"""``leads train``: supervised fine-tuning from a YAML recipe, and GGUF export of a saved model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from leads.errors import LeadsError

__all__ = ["train_group"]


@click.group("train")
def train_group() -> None:
    """Fine-tune a model on instruction data (needs the 'train' extra: torch, transformers, peft)."""


@train_group.command("sft")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True,
              help="Override a recipe setting, KEY=VALUE (YAML value), e.g. max_steps=10; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's result as JSON.")
def sft_command(config: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """Supervised fine-tuning (LoRA or full) from a recipe (see recipes/ and docs/training.md)."""
    import yaml

    from leads.train.config import load_config
    from leads.train.sft import main

    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        values[key.strip()] = yaml.safe_load(raw)
    try:
        result = main(load_config(config, values), progress=None if as_json else lambda m: click.echo(m, err=True))
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
        return
    click.echo(f"{result.steps} steps in {result.seconds:.0f} s ({result.steps_per_second:.3f} steps/s, "
               f"{result.tokens_per_second:.0f} tokens/s); train loss {result.first_loss:.4f} -> "
               f"{result.last_loss:.4f}; eval loss {result.eval_loss_before} -> {result.eval_loss_after}")
    for kind, path in result.paths.items():
        click.echo(f"  {kind}: {path}")


@train_group.command("gguf")
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--template", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A GGUF file with the same tokenizer (e.g. the GGUF the model was fine-tuned from).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The GGUF file to write.")
@click.option("--type", "file_type", type=click.Choice(["f32", "f16", "q8_0"]), default="q8_0", show_default=True,
              help="Weight type of the GGUF file.")
def gguf_command(model: Path, template: Path, out: Path, file_type: str) -> None:
    """Convert a saved Llama-architecture model folder (e.g. merged/) to GGUF for llama.cpp."""
    import torch
    from transformers import AutoModelForCausalLM

    from leads.train.export import write_gguf

    try:
        loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        path = write_gguf(loaded, out, template=template, file_type=file_type)
    except LeadsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
