"""The registry of record formats, content-based detection, and the read/write entry points."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from leads.errors import FormatError, LeadsError, SourceError
from leads.records import Record

Reader = Callable[[BinaryIO, str], Iterator[Record]]
Writer = Callable[[Iterable[Record], BinaryIO], int]
Sniffer = Callable[[bytes], bool]

HEAD_BYTES = 65536


@dataclass(frozen=True)
class RecordFormat:
    """One file format leads can read and/or write.

    ``read(stream, source)`` yields records from a binary stream (``source`` names the input in
    error messages) and raises :class:`FormatError` naming the record and field on malformed input.
    ``write(records, stream)`` writes them and returns how many were written.
    ``sniff(head)`` says from the first bytes whether content is in this format; ``priority``
    orders sniffers (higher first), so specific formats are tried before general ones.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Sniffer
    read: Reader | None = None
    write: Writer | None = None
    priority: int = 0
    aliases: tuple[str, ...] = field(default_factory=tuple)


_FORMATS: dict[str, RecordFormat] = {}


def register_format(fmt: RecordFormat) -> RecordFormat:
    """Add a format (built-in formats register themselves through this too)."""
    for name in (fmt.name, *fmt.aliases):
        _FORMATS[name] = fmt
    return fmt


def formats() -> list[RecordFormat]:
    """Registered formats, each once, in detection order."""
    unique = {id(f): f for f in _FORMATS.values()}
    return sorted(unique.values(), key=lambda f: (-f.priority, f.name))


def get_format(name: str) -> RecordFormat:
    try:
        return _FORMATS[name.lower()]
    except KeyError:
        known = ", ".join(sorted({f.name for f in formats()}))
        raise LeadsError(f"unknown format {name!r}; known formats: {known}") from None


def _open_binary(path: Path) -> BinaryIO:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except FileNotFoundError:
        raise SourceError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise SourceError("is a directory, not a file", source=str(path)) from None
    except OSError as exc:
        raise SourceError(f"cannot open: {exc.strerror}", source=str(path)) from None
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _read_head(stream: BinaryIO, source: str) -> bytes:
    try:
        head = stream.read(HEAD_BYTES)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"cannot read: {exc}", source=source) from None
    stream.seek(0)
    return head


def _strip_compression_suffix(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def detect_format(path: str | os.PathLike[str], head: bytes | None = None) -> RecordFormat:
    """Detect a file's format from its content; the extension only breaks ties.

    Raises :class:`FormatError` when no registered format recognises the content.
    """
    path = Path(path)
    if head is None:
        with _open_binary(path) as stream:
            head = _read_head(stream, str(path))
    if not head.strip():
        raise FormatError("file is empty", source=str(path))
    matches = [f for f in formats() if f.read is not None and _safe_sniff(f, head)]
    if not matches:
        raise FormatError(
            "format not recognised from its content (expected one of: "
            + ", ".join(f.name for f in formats() if f.read is not None)
            + ")",
            source=str(path),
        )
    suffix = Path(_strip_compression_suffix(path.name)).suffix.lower()
    for fmt in matches:
        if suffix in fmt.extensions:
            return fmt
    return matches[0]


def _safe_sniff(fmt: RecordFormat, head: bytes) -> bool:
    try:
        return bool(fmt.sniff(head))
    except Exception:  # a sniffer must never break detection
        return False


def read_records(path: str | os.PathLike[str], format: str | None = None) -> Iterator[Record]:
    """Yield the records of a file (plain or gzip-compressed), detecting its format if not given.

    Any failure is a :class:`LeadsError` that names the file; malformed content is a
    :class:`FormatError` that also names the record.
    """
    path = Path(path)
    stream = _open_binary(path)
    try:
        head = _read_head(stream, str(path))
        fmt = get_format(format) if format else detect_format(path, head)
        if fmt.read is None:
            raise LeadsError(f"format {fmt.name!r} cannot be read")
        yield from _guarded(fmt.read(stream, str(path)), str(path))
    finally:
        stream.close()


def read_bytes(data: bytes, format: str | None = None, source: str = "<bytes>") -> list[Record]:
    """Read records from bytes in memory (detecting the format from content if not given)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SourceError(f"cannot decompress: {exc}", source=source) from None
    fmt = get_format(format) if format else detect_format(Path(source), data[:HEAD_BYTES])
    if fmt.read is None:
        raise LeadsError(f"format {fmt.name!r} cannot be read")
    return list(_guarded(fmt.read(io.BytesIO(data), source), source))


def _guarded(records: Iterator[Record], source: str) -> Iterator[Record]:
    """Turn an unexpected exception inside a reader into a FormatError naming the file and record."""
    index = 0
    try:
        for index, record in enumerate(records, start=1):  # noqa: B007 - used in except
            yield record
    except LeadsError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeError) as exc:
        raise FormatError(
            f"malformed content ({type(exc).__name__}: {exc})", source=source, record=index + 1
        ) from exc


def write_records(
    records: Iterable[Record], path: str | os.PathLike[str] | BinaryIO, format: str
) -> int:
    """Write records to a path (``.gz`` compresses) or a binary stream; returns the count."""
    fmt = get_format(format)
    if fmt.write is None:
        raise LeadsError(f"format {fmt.name!r} cannot be written")
    if hasattr(path, "write"):
        return fmt.write(records, path)  # type: ignore[arg-type]
    target = Path(path)
    if target.name.lower().endswith(".gz"):
        with gzip.open(target, "wb") as compressed:
            return fmt.write(records, compressed)  # type: ignore[arg-type]
    with open(target, "wb") as stream:
        return fmt.write(records, stream)


def decode_text(data: bytes, source: str) -> str:
    """Decode a text file: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Real exports mix encodings (a UTF-8 file with stray Windows-1252 bytes is common), so the
    fallback is lenient rather than failing the import.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FormatError(f"invalid UTF-16 text: {exc.reason}", source=source) from None
    if b"\x00" in data[:4096]:
        raise FormatError("binary content, not text", source=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
