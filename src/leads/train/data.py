"""Tokenising conversations for supervised fine-tuning, with the loss on the answer only.

A conversation ``[..., user, assistant]`` is rendered with the tokenizer's chat template twice:
the prompt (everything before the last assistant turn, with the generation prompt, exactly what
an engine sends) and the whole conversation. The answer is the text the whole adds to the
prompt (the assistant's content and the template's end-of-turn marker); prompt and answer are
tokenised separately and joined, so the prompt's tokens are exactly those the model sees at
inference, and the labels are ``-100`` on every prompt token. A conversation longer than
``max_len`` tokens is dropped, never cut: a cut answer would teach the model to stop mid-JSON.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from leads.errors import FormatError, LeadsError

__all__ = [
    "CHATML_TEMPLATE",
    "Encoded",
    "batches",
    "encode",
    "encode_all",
    "load_conversations",
    "minilm_tokenizer",
]

IGNORE = -100

#: A ChatML template (SmolLM2's format) for tokenizers that have none.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    task: str | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def minilm_tokenizer() -> Any:
    """The MiniLM WordPiece tokenizer shipped with leads, as a transformers tokenizer with the
    ChatML special tokens and template (a tokenizer for tests that needs no download)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    data = (resources.files("leads.screen") / "models" / "minilm_tokenizer.json.gz").read_bytes()
    tokenizer = Tokenizer.from_str(gzip.decompress(data).decode("utf-8"))
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]")
    wrapped.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    wrapped.eos_token = "<|im_end|>"
    wrapped.chat_template = CHATML_TEMPLATE
    return wrapped


def load_conversations(path: str | Path, *, tasks: Sequence[str] | None = None,
                       limit: int | None = None) -> list[tuple[list[dict[str, str]], str | None]]:
    """``(messages, task)`` per line of a JSONL file of ``{"messages": [...]}`` objects (the
    task from ``meta.task`` when present); ``tasks`` keeps only those tasks."""
    file = Path(path)
    if not file.is_file():
        raise LeadsError(f"{file}: no such file")
    out: list[tuple[list[dict[str, str]], str | None]] = []
    with file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                messages = data["messages"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise FormatError('expected a JSON object with "messages"', source=str(file), line=number) from None
            if not messages or messages[-1].get("role") != "assistant":
                raise FormatError("the last message must be the assistant's answer", source=str(file), line=number)
            task = (data.get("meta") or {}).get("task")
            if tasks and task not in tasks:
                continue
            out.append((messages, task))
            if limit and len(out) >= limit:
                break
    return out


def encode(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of one conversation (see the module docstring)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    history = list(messages[:-1])
    prompt = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(list(messages), tokenize=False)
    if not whole.startswith(prompt):
        raise LeadsError("the chat template renders the prompt differently inside the whole conversation; "
                         "it cannot separate the answer for an answer-only loss")
    answer = whole[len(prompt):]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return [*prompt_ids, *answer_ids], [IGNORE] * len(prompt_ids) + list(answer_ids)


def encode_all(tokenizer: Any, conversations: Iterable[tuple[list[dict[str, str]], str | None]],
               max_len: int) -> tuple[list[Encoded], int]:
    """Encode conversations; returns those that fit ``max_len`` and how many did not."""
    kept: list[Encoded] = []
    dropped = 0
    for messages, task in conversations:
        ids, labels = encode(tokenizer, messages)
        if len(ids) > max_len:
            dropped += 1
            continue
        kept.append(Encoded(ids, labels, task))
    return kept, dropped


def batches(items: Sequence[Encoded], batch_size: int, *, pad_id: int, seed: int | None,
            epoch: int = 0) -> Iterator[dict[str, Any]]:
    """Padded batches (right padding) as torch tensors, shuffled per epoch when ``seed`` is set."""
    import torch

    order = list(range(len(items)))
    if seed is not None:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    for start in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[start:start + batch_size]]
        width = max(len(e) for e in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, example in enumerate(chunk):
            n = len(example)
            ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            mask[row, :n] = 1
        yield {"input_ids": ids, "labels": labels, "attention_mask": mask}
