"""Quote grounding: exact, normalised and fuzzy location, and refusing quotes that are not there."""

from hypothesis import assume, given
from hypothesis import strategies as st

from leads.grounding import locate, locate_all

TEXT = ("Methods: We randomly assigned 412 postmenopausal women\nto estradiol (1 mg/day) or placebo.\n"
        "Results: Hip fractures occurred in 3 of 206 women given estradiol and 9 of 206 given placebo "
        "(relative risk, 0.33; 95% CI, 0.09 to 1.21).")


def test_exact() -> None:
    span = locate("3 of 206 women given estradiol", TEXT)
    assert span and span.method == "exact" and TEXT[span.start:span.end] == span.text


def test_whitespace_case_and_quotes_are_normalised() -> None:
    span = locate("we randomly assigned 412 POSTMENOPAUSAL women to estradiol", TEXT)
    assert span and span.method == "normalized"
    assert TEXT[span.start:span.end] == "We randomly assigned 412 postmenopausal women\nto estradiol"
    curly = locate("\u201crelative risk, 0.33; 95% CI, 0.09 to 1.21\u201d", TEXT)
    assert curly is not None


def test_fuzzy_tolerates_a_small_slip() -> None:
    span = locate("Hip fractures occured in 3 of 206 women given estradiol", TEXT)
    assert span and span.method == "fuzzy" and span.score >= 0.9
    assert "Hip fractures" in span.text


def test_quotes_that_are_not_in_the_text_are_refused() -> None:
    assert locate("a double-blind crossover design with 80 men", TEXT) is None
    assert locate("", TEXT) is None
    assert locate("placebo", "") is None
    assert locate("xyz", TEXT) is None  # too short for fuzzy, not present
    found, missing = locate_all(["3 of 206", "nine of 206 given placebo tablets daily"], TEXT)
    assert len(found) == 1 and missing == ["nine of 206 given placebo tablets daily"]


@given(st.data())
def test_any_substring_is_located_at_a_matching_span(data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(TEXT) - 5))
    end = data.draw(st.integers(start + 5, len(TEXT)))
    quote = TEXT[start:end]
    assume(quote.strip())
    span = locate(quote, TEXT)
    assert span is not None
    assert TEXT[span.start:span.end].split() == quote.strip().strip('"').split() or span.method != "exact"


@given(st.text(min_size=1, max_size=200), st.text(max_size=300))
def test_locate_never_raises_and_spans_are_in_bounds(quote: str, text: str) -> None:
    span = locate(quote, text)
    if span is not None:
        assert 0 <= span.start <= span.end <= len(text)
        assert text[span.start:span.end] == span.text
