"""JSON Lines: one :class:`~leads.records.Record` per line, lossless (the project's own format)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from pydantic import ValidationError

from leads.errors import FormatError
from leads.formats._registry import RecordFormat, decode_text, register_format
from leads.records import Record


def sniff(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"{"):
        return False
    first = text.split(b"\n", 1)[0].strip()
    try:
        obj = json.loads(first)
    except ValueError:
        return False
    return isinstance(obj, dict) and "protocolSection" not in obj and "studies" not in obj


def read(stream: BinaryIO, source: str) -> Iterator[Record]:
    text = decode_text(stream.read(), source)
    number = 0
    # Split on "\n" only: str.splitlines() would also split on U+2028, U+0085 and other
    # separators that may appear raw inside JSON strings.
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        number += 1
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise FormatError(
                f"invalid JSON: {exc}", source=source, record=number, line=line_no
            ) from None
        if not isinstance(obj, dict):
            raise FormatError("expected a JSON object", source=source, record=number, line=line_no)
        try:
            yield Record.model_validate(obj)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise FormatError(
                first["msg"], source=source, record=number, line=line_no, field=field
            ) from None


def write(records: Iterable[Record], stream: BinaryIO) -> int:
    count = 0
    for record in records:
        data = record.model_dump(mode="json", exclude_defaults=True)
        stream.write(json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n")
        count += 1
    return count


FORMAT = register_format(
    RecordFormat(
        name="jsonl",
        description="JSON Lines, one leads record per line (lossless)",
        extensions=(".jsonl", ".ndjson"),
        sniff=sniff,
        read=read,
        write=write,
        priority=10,
        aliases=("json-lines", "ndjson"),
    )
)
