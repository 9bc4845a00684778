"""The public API: what `leads.__all__` promises exists, and private modules stay private."""

import importlib

import pytest

import leads
import leads.errors


def test_all_names_exist() -> None:
    for name in leads.__all__:
        assert hasattr(leads, name), name


def test_all_is_unique_and_public() -> None:
    assert len(set(leads.__all__)) == len(leads.__all__)
    assert all(not n.startswith("_") or n == "__version__" for n in leads.__all__)


@pytest.mark.parametrize("module", ["leads.formats", "leads.project", "leads.records", "leads.errors", "leads.dedup", "leads.vocab", "leads.engines", "leads.tasks", "leads.grounding"])
def test_submodule_all(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
        assert not name.startswith("_") or name == "__version__"


def test_error_tree() -> None:
    assert issubclass(leads.FormatError, leads.SourceError)
    for cls in (leads.SourceError, leads.ProjectError, leads.EngineError, leads.QueryError):
        assert issubclass(cls, leads.LeadsError)
    assert issubclass(leads.NotFoundError, leads.ProjectError)
    # every class in the tree is documented in the module docstring
    for name in leads.errors.__all__:
        assert name in leads.errors.__doc__


def test_format_error_message_names_the_place() -> None:
    err = leads.FormatError("bad year", source="refs.ris", record=3, line=17, field="PY")
    assert str(err) == "refs.ris: record 3, line 17, field 'PY': bad year"
    assert (err.source, err.record, err.line, err.field) == ("refs.ris", 3, 17, "PY")


def test_query_error_points_at_position() -> None:
    err = leads.QueryError("unbalanced parenthesis", query="(a OR b", position=7)
    assert "position 7" in str(err)
    assert str(err).splitlines()[-1].index("^") - 2 == 7
