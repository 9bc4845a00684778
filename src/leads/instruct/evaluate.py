"""Replay held-out instruction examples through an engine: is the answer valid, does it agree?

For each example with a stored input, the engine runs the task on it (``max_attempts`` as given:
1 measures first answers). *Valid* means leads accepted the answer (schema, then the task's
``finish``; on an engine's last attempt a quote that is not in the text is flagged, not fatal);
*grounded* means valid with every quote located in the text. *Agreement* compares the engine's output with the gold
answer's output, per task:

- eligibility: share of criteria with the gold verdict;
- search_query: Jaccard overlap of the two queries' words;
- characteristics: share of fields whose value equals the gold value (case and spaces folded);
- arms: F1 of the arm labels;
- participants, results: share of groups whose value equals the gold value (as numbers when both
  parse), for results the parameter type counting as one more item;
- pico: F1 of the spans (case and spaces folded), over the three labels.

An invalid answer scores 0. This is the before/after check of a fine-tuned model; the unified
benchmark harness is ``leads eval``.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from leads.engines._base import Engine
from leads.errors import EngineError
from leads.instruct.example import Example, normalise_text, unsupported_quotes
from leads.tasks import TASKS, Task

__all__ = ["ItemScore", "agreement", "evaluate_examples"]


@dataclass
class ItemScore:
    task: str
    item: str
    valid: bool
    agreement: float
    seconds: float
    error: str | None = None
    grounded: bool = False


def _norm(value: Any) -> str:
    return normalise_text(str(value)) if value is not None else ""


def _same_value(a: Any, b: Any) -> bool:
    try:
        return abs(float(str(a).replace(",", "")) - float(str(b).replace(",", ""))) < 1e-9
    except (TypeError, ValueError):
        return _norm(a) == _norm(b)


def _f1(gold: set[str], predicted: set[str]) -> float:
    if not gold and not predicted:
        return 1.0
    hit = len(gold & predicted)
    if not hit:
        return 0.0
    precision, recall = hit / len(predicted), hit / len(gold)
    return 2 * precision * recall / (precision + recall)


def agreement(task: str, gold: Any, predicted: Any) -> float:
    """How far ``predicted`` agrees with ``gold`` (both the task's output models), in [0, 1]."""
    if task == "eligibility":
        pairs = list(zip(gold.verdicts, predicted.verdicts, strict=False))
        return sum(g.eligibility == p.eligibility for g, p in pairs) / max(1, len(gold.verdicts))
    if task == "search_query":
        words = [set(re.findall(r"[a-z0-9]+", q.query.casefold())) for q in (gold, predicted)]
        union = words[0] | words[1]
        return len(words[0] & words[1]) / len(union) if union else 1.0
    if task == "characteristics":
        got = {f.name: f.value for f in predicted.fields}
        return sum(_norm(f.value) == _norm(got.get(f.name)) for f in gold.fields) / max(1, len(gold.fields))
    if task == "arms":
        return _f1({_norm(a.label) for a in gold.arms}, {_norm(a.label) for a in predicted.arms})
    if task in ("participants", "results"):
        got = {v.group_id: v.value for v in predicted.values}
        hits = sum(_same_value(v.value, got.get(v.group_id)) for v in gold.values)
        items = len(gold.values)
        if task == "results":
            hits += int(gold.param_type == predicted.param_type)
            items += 1
        return hits / max(1, items)
    if task == "pico":
        return _f1({f"{s.label}:{_norm(s.text)}" for s in gold.spans},
                   {f"{s.label}:{_norm(s.text)}" for s in predicted.spans})
    raise ValueError(f"no agreement measure for task {task!r}")


def _gold_output(task: Task, example: Example, inp: Any) -> Any:
    answer = task.answer_model.model_validate(example.answer)
    return task.finish(answer, inp, strict_quotes=False)


def evaluate_examples(examples: Iterable[Example], engine: Engine, *, limit: int | None = None,
                      tasks: Iterable[str] | None = None,
                      progress: Callable[[ItemScore], None] | None = None) -> dict[str, Any]:
    """Run every replayable example through ``engine``; returns per-task and overall figures."""
    wanted = set(tasks) if tasks else None
    scores: list[ItemScore] = []
    for example in examples:
        if limit is not None and len(scores) >= limit:
            break
        if not example.input or (wanted and example.task not in wanted):
            continue
        task = TASKS[example.task]
        inp = task.validate_input(example.input)
        gold = _gold_output(task, example, inp)
        started = time.perf_counter()
        try:
            result = engine.run(task, inp)
            grounded = not unsupported_quotes(result.output.model_dump(mode="json"))
            score = ItemScore(example.task, example.item, True, agreement(example.task, gold, result.output),
                              time.perf_counter() - started, grounded=grounded)
        except EngineError as exc:
            score = ItemScore(example.task, example.item, False, 0.0, time.perf_counter() - started,
                              error=str(exc)[:300])
        scores.append(score)
        if progress:
            progress(score)
    by_task: dict[str, list[ItemScore]] = defaultdict(list)
    for score in scores:
        by_task[score.task].append(score)

    def summary(items: list[ItemScore]) -> dict[str, Any]:
        n = len(items)
        return {"n": n, "valid": round(sum(s.valid for s in items) / n, 4) if n else None,
                "grounded": round(sum(s.grounded for s in items) / n, 4) if n else None,
                "agreement": round(sum(s.agreement for s in items) / n, 4) if n else None,
                "seconds": round(sum(s.seconds for s in items), 2)}

    return {
        "engine": engine.name,
        "model": engine.model,
        "overall": summary(scores),
        "tasks": {task: summary(items) for task, items in sorted(by_task.items())},
        "items": [{"task": s.task, "item": s.item, "valid": s.valid, "grounded": s.grounded,
                   "agreement": round(s.agreement, 4),
                   "seconds": round(s.seconds, 2), "error": s.error} for s in scores],
    }
