"""The biomedical sentence segmenter: hard cases, properties, and CONSORT-TM gold boundaries."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.documents.sentences import segment, sentence_spans


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Smith et al. reported a 30% reduction. The trial was stopped early.",
         ["Smith et al. reported a 30% reduction.", "The trial was stopped early."]),
        ("Adverse events (e.g. Nausea, headache) were rare. Most resolved.",
         ["Adverse events (e.g. Nausea, headache) were rare.", "Most resolved."]),
        ("Pain fell more with diclofenac vs. Placebo at week 4. Function did not differ.",
         ["Pain fell more with diclofenac vs. Placebo at week 4.", "Function did not differ."]),
        ("Enrolment is shown in Fig. 1. Baseline data are in Table 2.",
         ["Enrolment is shown in Fig. 1.", "Baseline data are in Table 2."]),
        ("The difference was significant (p < 0.05). Mean age was 54.3 years.",
         ["The difference was significant (p < 0.05).", "Mean age was 54.3 years."]),
        ("Randomisation was done by J. K. Rowling and A. B. Smith. Allocation was concealed.",
         ["Randomisation was done by J. K. Rowling and A. B. Smith.", "Allocation was concealed."]),
        ("Levels of vitamin D. The primary outcome was fracture.",
         ["Levels of vitamin D.", "The primary outcome was fracture."]),
        ("Digital ulcers occur in 35% of patients.2-5 Among a cohort of 2080 patients, 58% had ulcers.",
         ["Digital ulcers occur in 35% of patients.2-5", "Among a cohort of 2080 patients, 58% had ulcers."]),
        ("Renal failure was rare.1 2 It resolved in all cases.",
         ["Renal failure was rare.1 2", "It resolved in all cases."]),
        ("Was the effect real? We think so! Further trials are needed.",
         ["Was the effect real?", "We think so!", "Further trials are needed."]),
        ("Inclusion criteria: 1. Age over 18 years. 2. Written consent.",
         ["Inclusion criteria: 1. Age over 18 years.", "2. Written consent."]),
        ("SAE=serious adverse event. *Two patients withdrew. \u2020Per protocol.",
         ["SAE=serious adverse event.", "*Two patients withdrew.", "\u2020Per protocol."]),
        ("Drugs were approved by the U.S. Food and Drug Administration.",
         ["Drugs were approved by the U.S. Food and Drug Administration."]),
        ("The cut-off was 0.5 mg/dL. eGFR was measured at baseline.",
         ["The cut-off was 0.5 mg/dL.", "eGFR was measured at baseline."]),
        ('He said "stop." Then the trial ended.', ['He said "stop."', "Then the trial ended."]),
    ],
)
def test_hard_cases(text: str, expected: list[str]) -> None:
    assert segment(text) == expected


def test_offsets_point_into_the_given_range() -> None:
    text = "HEADER\nFirst one. Second one.\nTRAILER"
    start = text.index("First")
    end = text.index("\nTRAILER")
    spans = sentence_spans(text, start, end)
    assert [text[a:b] for a, b in spans] == ["First one.", "Second one."]
    assert sentence_spans("   ") == []
    assert sentence_spans("") == []


_WORDS = st.sampled_from(["The", "trial", "et", "al.", "e.g.", "vs.", "Fig.", "1.", "0.05", "p", "<",
                          "J.", "Smith", "patients.", "(n", "=", "12).", "Results:", "?", "!", "U.S.",
                          "\u2020", "*", "mRNA", "were", "randomised.", "12", "\u00b1", "3.4"])
_TEXTS = st.lists(_WORDS, max_size=40).map(" ".join) | st.text(max_size=200)


@given(_TEXTS)
@settings(max_examples=300, deadline=None)
def test_sentences_cover_every_character_in_order(text: str) -> None:
    spans = sentence_spans(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert text[previous_end:start].strip() == ""  # only whitespace between sentences
        assert text[start] == text[start].strip() and text[end - 1] == text[end - 1].strip()
        previous_end = end
    assert text[previous_end:].strip() == ""


@pytest.mark.shared
def test_boundary_f1_on_consort_tm_test_articles(shared_data: Path) -> None:
    """Gold sentence spans of the 12 CONSORT-TM test articles (rules were tuned on the other 38)."""
    from lxml import etree

    folder = shared_data / "fulltext" / "consort_tm"
    with open(folder / "Methods_test.csv", newline="", encoding="utf-8") as stream:
        test_ids = {row["PMCID"] for row in csv.DictReader(stream)}
    tp = fp = fn = 0
    for pmcid in sorted(test_ids):
        with gzip.open(folder / "xml" / f"{pmcid}.xml.gz") as stream:
            root = etree.fromstring(stream.read())
        text = root.find("text").text
        gold = {tuple(map(int, s.get("charOffset").split("-"))) for s in root.iter("sentence")}
        predicted: set[tuple[int, int]] = set()
        position = 0
        for line in text.split("\n"):
            predicted.update(sentence_spans(text, position, position + len(line)))
            position += len(line) + 1
        tp += len(gold & predicted)
        fp += len(predicted - gold)
        fn += len(gold - predicted)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.97, (precision, recall, f1)
