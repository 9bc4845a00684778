"""Study characteristics and arm design (classic engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads.engines.classic import ClassicEngine
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
