"""Evidence highlighting: offsets on ``title + "\\n\\n" + abstract`` mapped onto the title and the
abstract, everything escaped, overlapping spans, and spans that do not match dropped."""

from __future__ import annotations

from leads.tasks.eligibility import EligibilityInput
from leads.web.highlight import Span, assessed_text, highlight, split_spans


def _evidence(text: str, quote: str, label: str) -> tuple[str, int, int, str]:
    start = text.index(quote)
    return label, start, start + len(quote), quote


def test_the_assessed_text_is_the_eligibility_tasks_content() -> None:
    for title, abstract in (("A title.", "An abstract."), (None, "Only an abstract."), ("Only a title.", None)):
        inp = EligibilityInput(title=title, text=abstract or "", criteria=[{"text": "x"}])  # type: ignore[list-item]
        assert assessed_text(title, abstract)[0] == inp.content


def test_spans_land_in_the_title_and_the_abstract() -> None:
    title = "Estrogen and stroke: a randomized trial."
    abstract = "We randomized 200 women. Stroke was rare. Women were postmenopausal."
    text, _ = assessed_text(title, abstract)
    evidence = [_evidence(text, "a randomized trial", "I1"), _evidence(text, "Women were postmenopausal.", "I2"),
                _evidence(text, "We randomized 200 women.", "I1")]
    in_title, in_abstract, dropped = split_spans(title, abstract, evidence)
    assert dropped == 0
    assert [title[s.start:s.end] for s in in_title] == ["a randomized trial"]
    assert sorted(abstract[s.start:s.end] for s in in_abstract) == ["We randomized 200 women.",
                                                                    "Women were postmenopausal."]


def test_a_span_across_the_boundary_is_split() -> None:
    title, abstract = "Title words", "Abstract words"
    text, _ = assessed_text(title, abstract)
    in_title, in_abstract, dropped = split_spans(title, abstract, [("E1", 6, len(text), text[6:])])
    assert dropped == 0
    assert [title[s.start:s.end] for s in in_title] == ["words"]
    assert [abstract[s.start:s.end] for s in in_abstract] == ["Abstract words"]


def test_spans_whose_offsets_do_not_reproduce_the_quote_are_dropped() -> None:
    title, abstract = "T", "The abstract text."
    in_title, in_abstract, dropped = split_spans(title, abstract, [
        ("I1", 3, 7, "not this"), ("I2", -1, 2, "T\n"), ("I3", 5, 500, "x"), ("I4", 3, 6, "The"),
    ])
    assert dropped == 3
    assert in_title == [] and [abstract[s.start:s.end] for s in in_abstract] == ["The"]


def test_everything_is_escaped() -> None:
    text = 'A <script>alert("x")</script> & "quotes" in <b>text</b>'
    start = text.index("<script>")
    html = str(highlight(text, [Span(start, start + 30, "I1")]))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html and "&lt;b&gt;" in html
    assert html.count("<mark") == 1


def test_overlapping_spans_list_every_criterion() -> None:
    text = "one two three four"
    html = str(highlight(text, [Span(0, 13, "I1"), Span(4, 18, "E1")]))
    assert html == ('<mark class="ev" data-criteria="I1" title="evidence for I1">one </mark>'
                    '<mark class="ev" data-criteria="E1 I1" title="evidence for E1, I1">two three</mark>'
                    '<mark class="ev" data-criteria="E1" title="evidence for E1"> four</mark>')


def test_no_spans_no_marks() -> None:
    assert str(highlight("plain & simple", [])) == "plain &amp; simple"
    assert str(highlight(None, [])) == ""
