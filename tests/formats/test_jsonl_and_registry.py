"""The JSONL format (lossless) and the registry: detection, gzip, errors that name the place."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.errors import FormatError, LeadsError, SourceError
from leads.formats import detect_format, get_format, read_bytes, read_records, write_records
from leads.records import AbstractSection, MeshHeading, Record

SAMPLE = Path(__file__).parents[1] / "fixtures" / "project" / "estrogens_150.jsonl"

records_strategy = st.builds(
    Record,
    pmid=st.one_of(st.none(), st.integers(1, 99_999_999).map(str)),
    doi=st.one_of(st.none(), st.from_regex(r"10\.[0-9]{4}/[a-z0-9.]{1,20}", fullmatch=True)),
    title=st.one_of(st.none(), st.text(min_size=1)),
    abstract=st.one_of(st.none(), st.text(min_size=1)),
    abstract_sections=st.lists(st.builds(AbstractSection, label=st.one_of(st.none(), st.text()), text=st.text()),
                               max_size=3),
    authors=st.lists(st.text(min_size=1), max_size=5),
    year=st.one_of(st.none(), st.integers(1800, 2100)),
    mesh=st.lists(st.builds(MeshHeading, descriptor=st.text(min_size=1), major=st.booleans()), max_size=3),
    label=st.one_of(st.none(), st.booleans()),
    extra=st.dictionaries(st.text(max_size=10), st.one_of(st.text(), st.integers(), st.none()), max_size=3),
)


@given(st.lists(records_strategy, max_size=5))
@settings(max_examples=100)
def test_jsonl_round_trip_is_lossless(records: list[Record]) -> None:
    buffer = io.BytesIO()
    assert write_records(records, buffer, "jsonl") == len(records)
    assert read_bytes(buffer.getvalue(), format="jsonl", source="x.jsonl") == records


@given(st.binary(max_size=2000))
@settings(max_examples=200)
def test_jsonl_arbitrary_bytes_give_records_or_a_leads_error(data: bytes) -> None:
    try:
        out = read_bytes(data, format="jsonl", source="x.jsonl")
    except LeadsError:
        return
    assert all(isinstance(r, Record) for r in out)


def test_jsonl_bad_line_names_file_record_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "ok"}\n\n{"title": "also ok"}\n{"year": "nineteen"}\n', encoding="utf-8")
    with pytest.raises(FormatError) as info:
        list(read_records(path))
    err = info.value
    assert (err.source, err.record, err.line, err.field) == (str(path), 3, 4, "year")


def test_gzip_files_are_read_and_written(tmp_path: Path) -> None:
    records = list(read_records(SAMPLE))
    path = tmp_path / "sample.jsonl.gz"
    write_records(records, path, "jsonl")
    with open(path, "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"
    assert list(read_records(path)) == records
    assert detect_format(path).name == "jsonl"
    assert read_bytes(gzip.compress(SAMPLE.read_bytes()), source="s.gz") == records


def test_detection_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ris"
    empty.write_bytes(b"   \n")
    with pytest.raises(FormatError, match="empty"):
        detect_format(empty)
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x00\x01\x02 not a reference file")
    with pytest.raises(FormatError, match="not recognised"):
        detect_format(junk)
    with pytest.raises(SourceError, match="file not found"):
        list(read_records(tmp_path / "missing.ris"))
    with pytest.raises(SourceError, match="directory"):
        list(read_records(tmp_path))
    with pytest.raises(LeadsError, match="unknown format 'docx'"):
        get_format("docx")
    truncated = tmp_path / "trunc.jsonl.gz"
    truncated.write_bytes(gzip.compress(SAMPLE.read_bytes())[:200])
    with pytest.raises(LeadsError):
        list(read_records(truncated))
