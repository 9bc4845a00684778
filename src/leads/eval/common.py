"""What every ``leads eval`` subcommand shares: match variants, the common options, the output.

Match variants
--------------
Text values (a gold string against a predicted one):

- ``exact``: equal after stripping surrounding whitespace;
- ``normalised``: equal after :func:`normalise_text` (Unicode NFKC, case folded, quotes and
  dashes unified, punctuation dropped, whitespace collapsed);
- ``fuzzy``: the normalised strings have a rapidfuzz ratio of at least 90 (of 100), i.e. a
  normalised edit similarity of 0.9 or more.

Numbers (a gold number against a predicted one): ``exact`` (equal as numbers, so 30 == 30.0),
``within_1pct`` and ``within_5pct`` (``|predicted - gold| <= p * |gold|``; for a gold of 0 only
0 matches). "Not reported" on both sides (``None``) is a match in every variant; on one side only
it is a miss.

Result shape
------------
Every evaluation returns a JSON-able dict with at least ``task``, ``dataset``, ``engine`` and
``metrics`` (numbers, possibly nested). :func:`metric_value` reads a dotted path
(``"metrics.recall_at.10"``) from it; the regression checker (:mod:`leads.eval.regression`)
uses the same paths. :func:`markdown_table` renders the flattened metrics as a two-column table.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from rapidfuzz import fuzz

from leads.errors import LeadsError

__all__ = [
    "NUMBER_VARIANTS",
    "TEXT_VARIANTS",
    "EvalError",
    "common_options",
    "emit",
    "flatten",
    "markdown_table",
    "metric_value",
    "normalise_text",
    "number_matches",
    "share",
    "text_matches",
]

TEXT_VARIANTS = ("exact", "normalised", "fuzzy")
NUMBER_VARIANTS = ("exact", "within_1pct", "within_5pct")
FUZZY_THRESHOLD = 90.0


class EvalError(LeadsError):
    """An evaluation cannot run as asked (missing data, an unknown metric, a malformed file)."""


_PUNCT_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                            "\u2014": "-", "\u2212": "-", "\u00a0": " "})
_NON_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str | None) -> str:
    """Case-folded, NFKC, punctuation-free, single-spaced text (``""`` for ``None``)."""
    if text is None:
        return ""
    folded = unicodedata.normalize("NFKC", text).translate(_PUNCT_MAP).casefold()
    return _SPACES.sub(" ", _NON_WORD.sub(" ", folded)).strip()


def text_matches(gold: str | None, predicted: str | None) -> dict[str, bool]:
    """Whether ``predicted`` matches ``gold`` in each text variant (see the module docstring)."""
    if gold is None or predicted is None:
        same = gold is None and predicted is None
        return dict.fromkeys(TEXT_VARIANTS, same)
    exact = gold.strip() == predicted.strip()
    g, p = normalise_text(gold), normalise_text(predicted)
    normalised = exact or (g == p and bool(g))
    fuzzy_ok = normalised or (bool(g) and bool(p) and fuzz.ratio(g, p) >= FUZZY_THRESHOLD)
    return {"exact": exact, "normalised": normalised, "fuzzy": fuzzy_ok}


def number_matches(gold: float | None, predicted: float | None) -> dict[str, bool]:
    """Whether ``predicted`` matches ``gold`` exactly, within 1 % and within 5 % of ``gold``."""
    if gold is None or predicted is None:
        return dict.fromkeys(NUMBER_VARIANTS, gold is None and predicted is None)
    if not _finite(gold) or not _finite(predicted):
        return dict.fromkeys(NUMBER_VARIANTS, False)
    diff = abs(float(predicted) - float(gold))
    scale = abs(float(gold))
    return {"exact": diff == 0.0,
            "within_1pct": diff <= 0.01 * scale,
            "within_5pct": diff <= 0.05 * scale}


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def share(hits: Iterable[bool]) -> float | None:
    """The fraction of true values (``None`` for none at all), rounded to 4 places."""
    values = list(hits)
    return round(sum(values) / len(values), 4) if values else None


# --------------------------------------------------------------------------------------------
# Metric paths and tables


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": leaf}`` (lists are left out: they are per-item details)."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, Mapping):
                out.update(flatten(item, path))
            elif not isinstance(item, list | tuple):
                out[path] = item
    return out


def metric_value(result: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a result (``KeyError`` naming the missing part)."""
    node: Any = result
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(walked) or "the result"
            raise KeyError(f"{path}: no {part!r} in {where}")
        node = node[part]
        walked.append(part)
    return node


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "nan"
    return str(value).replace("|", "\\|")


def markdown_table(result: Mapping[str, Any], *, title: str | None = None) -> str:
    """The flattened ``metrics`` of a result as a Markdown table (``metric | value``)."""
    lines = []
    heading = title or f"{result.get('task', 'eval')} on {result.get('dataset', '?')} ({result.get('engine', '?')})"
    lines.append(f"**{heading}**")
    lines.append("")
    lines.append("| metric | value |")
    lines.append("|---|---|")
    for key, value in flatten(result.get("metrics", {})).items():
        lines.append(f"| {key} | {_cell(value)} |")
    extra = [f"{k} {result[k]}" for k in ("n", "seconds") if k in result]
    if extra:
        lines.append("")
        lines.append(", ".join(extra))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The common options and output

F = TypeVar("F", bound=Callable[..., Any])


def common_options(*, data_required: bool = True, data_help: str = "The evaluation data.",
                   data_dir: bool = False) -> Callable[[F], F]:
    """``--data``, ``--engine``, ``--limit``, ``--json`` and ``--markdown`` for a subcommand."""

    def decorate(fn: F) -> F:
        fn = click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path),
                          default=None, help="Write the Markdown table to this file (it is printed "
                                             "when neither --json nor --markdown is given).")(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(fn)
        fn = click.option("--limit", type=int, default=0, show_default=True,
                          help="Evaluate only the first N items (0 = all): a quick check.")(fn)
        fn = click.option("--engine", default="classic", show_default=True,
                          help="Engine that runs the task (classic, llamacpp, openai, ...).")(fn)
        fn = click.option("--data", "data", required=data_required, default=None,
                          type=click.Path(exists=True, file_okay=not data_dir, path_type=Path),
                          help=data_help)(fn)
        return fn

    return decorate


def emit(result: Mapping[str, Any], *, as_json: bool, markdown_file: Path | None,
         text: str | None = None) -> None:
    """Print JSON (``--json``), write the Markdown table (``--markdown``), or print the table."""
    table = text if text is not None else markdown_table(result)
    if markdown_file is not None:
        markdown_file.parent.mkdir(parents=True, exist_ok=True)
        markdown_file.write_text(table + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=_json_default))
    elif markdown_file is None:
        click.echo(table)


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
