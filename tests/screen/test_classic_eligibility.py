"""The classic eligibility assessor: sentence splitting, criterion analysis, verdicts with exact
evidence on real Estrogens abstracts (tests/fixtures/project/estrogens_150.jsonl) against the
criteria of examples/estrogens/review.toml, and the run through the classic engine."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.engines import MemoryCallLog, get_engine
from leads.screen import classic
from leads.screen.classic import analyse_criterion, assess, split_sentences
from leads.tasks import TASKS
from leads.tasks.eligibility import Criterion, EligibilityInput, EligibilityOutput

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def records(fixtures: Path) -> dict[str, dict]:
    lines = (fixtures / "project" / "estrogens_150.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["pmid"]: r for r in map(json.loads, lines)}


@pytest.fixture(scope="module")
def review_criteria() -> list[Criterion]:
    config = tomllib.loads((REPO / "examples" / "estrogens" / "review.toml").read_text("utf-8"))
    c = config["criteria"]
    return ([Criterion(text=t) for t in c["inclusion"]]
            + [Criterion(text=t, kind="exclusion") for t in c["exclusion"]])


def run(record: dict, criteria: list[Criterion]) -> tuple[EligibilityInput, EligibilityOutput]:
    inp = EligibilityInput(title=record.get("title"), text=record.get("abstract") or record["title"],
                           criteria=criteria)
    return inp, assess(inp)


def check_evidence(inp: EligibilityInput, out: EligibilityOutput) -> None:
    content = inp.content
    for v in out.verdicts:
        for e in v.evidence:
            assert content[e.start:e.end] == e.quote
            assert 0 <= e.score <= 1


# ---- sentences -----------------------------------------------------------------------------


def texts(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def test_abbreviations_decimals_and_p_values() -> None:
    text = ("Smith et al. reported a 2.5-fold risk (95% CI, 1.2-3.4; P < .05) vs. placebo, i.e. a "
            "large effect. E.g. Fig. 2 shows it. Doses were 0.625 mg/d. No. of women was 120.")
    assert texts(text) == [
        "Smith et al. reported a 2.5-fold risk (95% CI, 1.2-3.4; P < .05) vs. placebo, i.e. a large effect.",
        "E.g. Fig. 2 shows it.",
        "Doses were 0.625 mg/d.",
        "No. of women was 120.",
    ]


def test_section_labels_initials_questions_and_line_breaks() -> None:
    text = ("BACKGROUND: HRT is common. METHODS: We randomly assigned women (U.S. sites; J. R. "
            "Smith, PI). Results. Was it safe? Yes! Levels of vitamin D. Then\nline two")
    sentences = split_sentences(text)
    assert [(s.label, s.text) for s in sentences] == [
        ("BACKGROUND", "HRT is common."),
        ("METHODS", "We randomly assigned women (U.S. sites; J. R. Smith, PI)."),
        ("Results", "Was it safe?"),
        (None, "Yes!"),
        (None, "Levels of vitamin D."),
        (None, "Then"),
        (None, "line two"),
    ]


def test_offsets_with_a_base_offset() -> None:
    title = "Estrogen and stroke."
    body = "We followed 1,000 women. Stroke was rare."
    content = f"{title}\n\n{body}"
    for s in split_sentences(content):
        assert content[s.start:s.end] == s.text
    shifted = split_sentences(body, offset=len(title) + 2)
    assert [content[s.start:s.end] for s in shifted] == ["We followed 1,000 women.", "Stroke was rare."]


_pieces = st.sampled_from(
    ["et al.", "i.e.", "vs.", "2.5", "P < .05", "METHODS:", "Results.", "U.S.", "J. Smith", "\n",
     "\n\n", ". ", "? ", "! ", "women", "The", "trial", "(", ")", " ", "  ", "Fig.", "e.g.", "HRT:"]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(_pieces, st.text(max_size=8)), max_size=40).map("".join))
def test_offsets_property(text: str) -> None:
    sentences = split_sentences(text)
    covered = [False] * len(text)
    previous_end = 0
    for s in sentences:
        assert text[s.start:s.end] == s.text
        assert s.text and s.text == s.text.strip()
        assert s.start >= previous_end
        previous_end = s.end
        for i in range(s.start, s.end):
            covered[i] = True
    # Every non-blank character is in a sentence or in a section label.
    label_words = {s.label for s in sentences if s.label}
    uncovered = "".join(c if not covered[i] else " " for i, c in enumerate(text))
    leftover = re.sub(r"[\s:.]+", " ", uncovered).split()
    assert all(any(w in label for label in label_words) for w in leftover), leftover


# ---- criteria ------------------------------------------------------------------------------


def test_analyse_criterion_aspects() -> None:
    rct = analyse_criterion("Randomised controlled trial")
    assert rct.aspect == "design" and rct.designs_required == {"rct"}
    sr = analyse_criterion("Systematic reviews of cohort studies")
    assert sr.designs_required == {"systematic_review", "observational"}
    original = analyse_criterion("Only inclusion of original articles, exclusion of review articles")
    assert original.aspect == "design"
    assert original.designs_forbidden >= {"review", "systematic_review"}
    assert not original.designs_required & {"review", "systematic_review"}
    assert analyse_criterion("The study is published in English").aspect == "language"
    women = analyse_criterion("Postmenopausal women")
    assert women.aspect == "population" and women.sex == "female"
    estrogens = analyse_criterion("Treatment with estrogens")
    assert "Estrogens" in {d.name for d in estrogens.concepts}
    assert "intervention" in estrogens.aspects


# ---- verdicts on real abstracts ------------------------------------------------------------


def test_rct_of_estradiol_meets_the_review_criteria(records: dict, review_criteria: list[Criterion]) -> None:
    inp, out = run(records["10758784"], review_criteria)  # randomized estradiol vs placebo patches
    check_evidence(inp, out)
    v = out.verdicts
    assert v[0].eligibility == "YES"  # comparison group (placebo)
    assert v[0].evidence and re.search(r"placebo|random", v[0].evidence[0].quote)
    assert v[2].eligibility == "YES"  # English
    assert v[3].eligibility in {"UNCERTAIN", "PARTIAL"}  # exclusion: not said
    assert out.score == EligibilityOutput.score_of(out.verdicts, inp.criteria)
    assert out.score > 0.4


def test_review_is_not_original_research(records: dict) -> None:
    criteria = [Criterion(text="Only inclusion of original articles, exclusion of review articles")]
    inp, out = run(records["10090424"], criteria)  # "This review sought to examine ..."
    check_evidence(inp, out)
    v = out.verdicts[0]
    assert v.eligibility == "NO"
    assert "review" in v.rationale.lower()
    assert v.evidence and v.evidence[0].quote.startswith("This review")


def test_translated_title_fails_english(records: dict, review_criteria: list[Criterion]) -> None:
    inp, out = run(records["10408073"], review_criteria)  # "[The effects of hormone ...]"
    assert out.verdicts[2].eligibility == "NO"
    assert "bracket" in out.verdicts[2].rationale
    check_evidence(inp, out)


def test_no_only_with_positive_evidence(records: dict) -> None:
    women = [Criterion(text="Postmenopausal women")]
    # Elderly patients with dementia: the abstract never says women or men -> UNCERTAIN, not NO.
    inp, out = run(records["12091203"], women)
    assert out.verdicts[0].eligibility == "UNCERTAIN"
    # Men with coronary artery disease: positive evidence of another population -> NO.
    inp, out = run(records["10072236"], women)
    v = out.verdicts[0]
    assert v.eligibility == "NO"
    assert "men" in v.rationale and v.evidence and re.search(r"\bmen\b", v.evidence[0].quote)
    check_evidence(inp, out)


def test_explosion_estradiol_satisfies_estrogens(records: dict) -> None:
    inp, out = run(records["10758784"], [Criterion(text="Treatment with estrogens")])
    v = out.verdicts[0]
    assert v.eligibility in {"YES", "PARTIAL"}
    assert "Estrogens" in v.rationale and "estradiol" in v.rationale.lower()
    check_evidence(inp, out)


def test_exclusion_criterion_yes_means_it_applies(records: dict) -> None:
    criteria = [Criterion(text="Randomised controlled trial", kind="exclusion")]
    _, out = run(records["10758784"], criteria)
    assert out.verdicts[0].eligibility == "YES"
    assert out.score == -1.0


def test_evidence_offsets_exact_on_many_records(records: dict, review_criteria: list[Criterion]) -> None:
    seen = set()
    for record in list(records.values())[:25]:
        inp, out = run(record, review_criteria)
        assert len(out.verdicts) == len(review_criteria)
        assert [v.criterion for v in out.verdicts] == list(range(len(review_criteria)))
        check_evidence(inp, out)
        seen.update(v.eligibility for v in out.verdicts)
        for v in out.verdicts:
            assert v.rationale
            if v.eligibility == "NO":
                assert v.evidence or "bracket" in v.rationale
    assert {"YES", "UNCERTAIN"} <= seen


def test_works_without_the_embedding_model(records: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(classic._embedder_state, "embedder", None)
    classic._criterion_embedding.cache_clear()
    try:
        inp, out = run(records["10758784"], [Criterion(text="Treatment with estrogens"),
                                              Criterion(text="Postmenopausal women")])
        assert out.verdicts[0].eligibility in {"YES", "PARTIAL"}
        assert "similarity" not in out.verdicts[0].rationale
        check_evidence(inp, out)
    finally:
        classic._criterion_embedding.cache_clear()


def test_runs_through_the_classic_engine_and_is_logged(records: dict, review_criteria: list[Criterion]) -> None:
    log = MemoryCallLog()
    engine = get_engine("classic", log=log)
    record = records["10758784"]
    inp = {"title": record["title"], "text": record["abstract"],
           "criteria": [c.model_dump() for c in review_criteria]}
    result = engine.run(TASKS["eligibility"], inp, item_key=record["pmid"])
    assert isinstance(result.output, EligibilityOutput)
    assert result.model == f"classic/eligibility/{classic.VERSION}"
    calls = log.calls()
    assert len(calls) == 1 and calls[0].task == "eligibility" and calls[0].item_key == record["pmid"]
    assert calls[0].parsed == result.output.model_dump(mode="json")
