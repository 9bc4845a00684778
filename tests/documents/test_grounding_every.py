"""``leads.grounding.locate_every`` / ``normalize_with_map``: the extension the documents use."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leads.grounding import locate, locate_every, normalize_with_map

TEXT = ("Hip fractures occurred in 3 of 206 women given estradiol.\nIn the placebo group, 9 of 206\n"
        "women had a fracture; the placebo  group was older.")


def test_every_exact_occurrence_in_order() -> None:
    spans = locate_every("placebo", TEXT)
    assert [s.start for s in spans] == [i for i in range(len(TEXT)) if TEXT.startswith("placebo", i)]
    assert all(s.method == "exact" for s in spans)
    assert len(locate_every("placebo", TEXT, limit=1)) == 1


def test_normalised_occurrences_map_back_to_the_source() -> None:
    spans = locate_every("PLACEBO GROUP", TEXT)
    assert [TEXT[s.start:s.end] for s in spans] == ["placebo group", "placebo  group"]
    assert {s.method for s in spans} == {"normalized"}


def test_fuzzy_and_missing() -> None:
    [span] = locate_every("Hip fractures occured in 3 of 206 women", TEXT)
    assert span.method == "fuzzy" and span.score >= 0.9
    assert locate_every("no such sentence anywhere in here", TEXT) == []
    assert locate_every("", TEXT) == [] and locate_every("x", "") == []


def test_precomputed_normalisation_gives_the_same_answers() -> None:
    normalized = normalize_with_map(TEXT)
    for quote in ("9 of 206 women", "IN THE PLACEBO GROUP, 9 OF 206 WOMEN", "Hip fractures occured in 3 of 206"):
        assert locate(quote, TEXT) == locate(quote, TEXT, normalized=normalized)
        assert locate_every(quote, TEXT) == locate_every(quote, TEXT, normalized=normalized)


@given(st.text(min_size=1, max_size=60), st.text(max_size=200))
def test_spans_are_in_bounds_and_match_their_text(quote: str, text: str) -> None:
    for span in locate_every(quote, text):
        assert 0 <= span.start <= span.end <= len(text) and text[span.start:span.end] == span.text
