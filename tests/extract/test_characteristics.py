"""Study characteristics and arm design (classic engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads.engines.classic import ClassicEngine
from leads.eval.characteristics import FIELDS, ConsortArticle, load_consort_article
from leads.extract.characteristics import (
    builtin_for,
    classic_arms,
    classic_characteristics,
    find_countries,
    find_registrations,
)
from leads.tasks.extraction import (
    ArmDesignTask,
    ArmsInput,
    CharacteristicsInput,
    FieldSpec,
    StudyCharacteristicsTask,
)


@pytest.fixture(scope="module")
def jstars(fixtures: Path) -> str:
    return (fixtures / "extract" / "jstars_PMC4588424.txt").read_text(encoding="utf-8")


def test_find_countries_names_aliases_and_traps() -> None:
    text = ("Centres in Japan, the USA, the United Kingdom and Korea (South) took part; "
            "Guinea pigs were not used. Côte d'Ivoire joined later.")
    assert [name for name, _s, _e in find_countries(text)] == [
        "Japan", "United States", "United Kingdom", "South Korea", "Côte d'Ivoire"]
    for _name, start, end in find_countries(text):
        assert text[start:end]


def test_find_registrations() -> None:
    text = ("Registered at ClinicalTrials.gov (NCT00221104), ISRCTN 12345678, ACTRN12610000123456 "
            "and EudraCT number 2004-001234-56.")
    ids = [value for value, _s, _e in find_registrations(text)]
    assert ids == ["NCT00221104", "ISRCTN12345678", "ACTRN12610000123456", "EudraCT 2004-001234-56"]


@pytest.mark.parametrize(("spec", "builtin"), [
    ("design: study design", "design"), ("Sample size", "randomised N"), ("Country", "countries"),
    ("Setting: where the trial took place", "setting"), ("Conditions", "conditions"),
    ("Interventions", "interventions"), ("Comparator", "comparators"),
    ("Primary outcome", "primary outcome"), ("Follow-up duration", "follow-up"),
    ("Funding source", "funding"), ("Trial registration", "registration"),
    ("Blinding: who was masked", None),
    # The name decides; a built-in word in a clause of the description does not (CONSORT-TM fields).
    ("blinding: who was blinded after assignment to interventions", None),
    ("statistical methods: statistical methods used to compare groups for the primary outcome", None),
    ("sequence generation: method used to generate the random allocation sequence", None),
    ("allocation concealment: mechanism used to conceal the allocation sequence", None),
    ("eligibility criteria: eligibility criteria for participants", None),
    ("blinding of outcome assessors", None),
    ("dose: the dose of the drug", None),
    # ... while a name (or, failing that, a description's head phrase) still routes.
    ("sources of funding", "funding"), ("number of participants", "randomised N"),
    ("duration of follow-up", "follow-up"), ("countries of recruitment", "countries"),
    ("randomized N: number randomised", "randomised N"), ("Primary end point", "primary outcome"),
    ("comparator intervention", "comparators"),
    ("recruitment period: dates defining the periods of recruitment and follow-up", "recruitment period"),
    ("Study period", "recruitment period"),
    ("sponsor: who paid for the trial", "funding"),
    ("where: countries where the trial ran", "countries"),
    ("what was given: the interventions of each group, with details", "interventions"),
])
def test_builtin_for(spec: str, builtin: str | None) -> None:
    field = FieldSpec.parse(spec)
    assert builtin_for(field.name, field.description) == builtin


def test_characteristics_of_a_real_trial(jstars: str) -> None:
    specs = ["design: study design", "randomised N: number of participants randomised",
             "countries", "registration: trial registration", "funding", "follow-up",
             "primary outcome", "interventions", "comparators", "conditions",
             "Blinding: who was blinded to allocation"]
    out = classic_characteristics(CharacteristicsInput(text=jstars, fields=[FieldSpec.parse(s) for s in specs]))
    values = {f.name: f.value for f in out.fields}
    assert values["design"] is not None
    for part in ("randomised controlled trial", "open-label", "parallel-group", "multicentre"):
        assert part in values["design"]
    assert values["randomised N"] == "1578"
    assert values["countries"] == "Japan"
    assert values["registration"] == "NCT00221104"
    assert values["funding"] is not None and "Ministry of Health, Labour and Welfare" in values["funding"]
    assert values["follow-up"] == "4.9 ± 1.4 years"
    assert values["primary outcome"] is not None and values["primary outcome"].startswith(
        "occurrence of stroke and transient ischemic attack")
    assert values["interventions"] is not None and "pravastatin" in values["interventions"].lower()
    assert values["conditions"] is not None and "stroke" in values["conditions"].lower()
    for field in out.fields:
        if field.value is None:
            assert field.evidence == []
        else:
            assert field.evidence, field.name
        for ev in field.evidence:
            assert jstars[ev.start:ev.end] == ev.quote


def test_characteristics_not_reported_is_none() -> None:
    text = "Aspirin reduced headache in adults. Headache scores fell."
    out = classic_characteristics(CharacteristicsInput(
        text=text, fields=[FieldSpec.parse("registration"), FieldSpec.parse("funding"),
                           FieldSpec.parse("countries"), FieldSpec.parse("follow-up")]))
    assert [(f.value, f.evidence) for f in out.fields] == [(None, [])] * 4


def test_arms_of_a_real_trial(jstars: str) -> None:
    out = classic_arms(ArmsInput(text=jstars))
    arms = {a.label.lower(): a for a in out.arms}
    assert set(arms) == {"pravastatin", "control"}
    assert arms["pravastatin"].type == "EXPERIMENTAL"
    assert "10 mg" in arms["pravastatin"].description.replace("\xa0", " ")
    assert arms["control"].type == "NO_INTERVENTION"
    assert arms["pravastatin"].interventions == ["pravastatin"]
    for arm in out.arms:
        assert arm.evidence
        for ev in arm.evidence:
            assert jstars[ev.start:ev.end] == ev.quote


def test_arm_types_from_cue_words(fixtures: Path) -> None:
    text = (fixtures / "extract" / "pico_corpus" / "12721239.txt").read_text(encoding="utf-8")
    out = classic_arms(ArmsInput(text=text))
    types = {a.label: a.type for a in out.arms}
    assert types.get("control") in {"NO_INTERVENTION", "ACTIVE_COMPARATOR"}
    assert any(t == "EXPERIMENTAL" and "exercise" in label for label, t in types.items())


def test_tasks_through_the_classic_engine(jstars: str) -> None:
    engine = ClassicEngine()
    arms = engine.run(ArmDesignTask(), {"text": jstars})
    assert len(arms.output.arms) == 2
    chars = engine.run(StudyCharacteristicsTask(), {"text": jstars, "fields": [{"name": "countries"}]})
    assert chars.output.fields[0].value == "Japan"
    assert [r.model.split("/")[1] for r in engine.log.records] == ["arms", "characteristics"]


@pytest.fixture(scope="module")
def consort_article(fixtures: Path) -> ConsortArticle:
    return load_consort_article(fixtures / "eval" / "consort_tm" / "PMC3623038.xml.gz")


@pytest.mark.parametrize("spec", [
    "blinding: who was blinded after assignment to interventions",
    "sequence generation: method used to generate the random allocation sequence",
    "statistical methods: statistical methods used to compare groups for the primary outcome",
])
def test_user_field_quotes_its_own_sentence(consort_article: ConsortArticle, spec: str) -> None:
    """A field no built-in answers is answered by sentence retrieval, from a sentence that
    CONSORT-TM labels with the field's item (not, say, the interventions' sentences)."""
    field = FieldSpec.parse(spec)
    items = next(f.items for f in FIELDS if f.name == field.name)
    gold = consort_article.labelled(items)
    out = classic_characteristics(CharacteristicsInput(text=consort_article.text, fields=[field]))
    (extracted,) = out.fields
    assert extracted.value is not None and extracted.evidence
    assert any(min(e.end, g_end) > max(e.start, g_start) for e in extracted.evidence for g_start, g_end in gold)
    for e in extracted.evidence:
        assert consort_article.text[e.start:e.end] == e.quote


def test_recruitment_period_is_the_date_range_of_enrolment(consort_article: ConsortArticle) -> None:
    field = FieldSpec.parse("recruitment period: dates defining the periods of recruitment and follow-up")
    (extracted,) = classic_characteristics(CharacteristicsInput(text=consort_article.text, fields=[field])).fields
    assert extracted.value == "between May 2010 and November 2010"
    assert "enrolled" in extracted.evidence[0].quote
