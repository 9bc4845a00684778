"""The shipped study-design classifier: loads without training or scikit-learn, and classifies
real abstracts. The case report and the animal study are Cohen 2006 records from the
classifier's held-out split (not trained on)."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from leads.screen.design import (
    DESIGNS,
    MODEL_FILE,
    DesignModel,
    declared_design,
    features,
)


@pytest.fixture(scope="module")
def model() -> DesignModel:
    return DesignModel.load()


@pytest.fixture(scope="module")
def estrogens(fixtures: Path) -> dict[str, dict]:
    lines = (fixtures / "project" / "estrogens_150.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["pmid"]: r for r in map(json.loads, lines)}


def cohen_record(shared: Path, topic: str, pmid: int) -> tuple[str, str]:
    with (shared / "screening" / "cohen2006" / f"{topic}.csv").open(encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["pubmedID"] == str(pmid))
    return row["title"], row["abstract"]


def test_shipped_model_is_small_numbers_only_and_cached(model: DesignModel) -> None:
    ref = resources.files("leads.screen").joinpath("models", MODEL_FILE)
    with resources.as_file(ref) as path:
        assert path.stat().st_size < 5_000_000
        with np.load(path, allow_pickle=False) as z:  # no pickled objects inside
            assert {"vocabulary", "idf", "design_coef", "subject_coef"} <= set(z.files)
    assert DesignModel.load() is model
    assert model.design.classes == DESIGNS
    assert model.design.coef.shape == (len(DESIGNS), len(model.vocabulary))
    metrics = model.meta["metrics"]
    assert metrics["test"] > 500 and metrics["per_class"]["rct"]["f1"] > 0.8


def test_rct_abstract(model: DesignModel, estrogens: dict[str, dict]) -> None:
    r = estrogens["10758784"]  # estradiol patches vs placebo, "randomly and blindly assigned"
    p = model.predict(r["title"], r["abstract"])
    assert p.design == "rct" and p.probability > 0.7
    assert p.human > 0.9
    assert abs(sum(p.probabilities.values()) - 1) < 1e-6


def test_review_abstract(model: DesignModel, estrogens: dict[str, dict]) -> None:
    r = estrogens["10090424"]  # "Oral micronized progesterone." "This review sought to ..."
    p = model.predict(r["title"], r["abstract"])
    assert p.design == "review"
    assert p.cue is not None and p.cue.text == "This review"


@pytest.mark.shared
def test_case_report(model: DesignModel, shared_data: Path) -> None:
    title, abstract = cohen_record(shared_data, "NSAIDS", 12046048)
    assert title.startswith("Celecoxib-induced acute interstitial nephritis")
    p = model.predict(title, abstract)
    assert p.design == "case_report" and p.human > 0.5


@pytest.mark.shared
def test_animal_study(model: DesignModel, shared_data: Path) -> None:
    title, abstract = cohen_record(shared_data, "NSAIDS", 10588920)
    assert "rat" in title
    p = model.predict(title, abstract)
    assert p.design == "animal"
    assert p.human < 0.5


def test_declared_design_title_and_abstract() -> None:
    cue = declared_design("Estrogen and dementia: a meta-analysis.", "We pooled 10 studies.")
    assert cue is not None and cue.design == "systematic_review" and cue.text == "meta-analysis"
    text = "Angioedema after captopril.\n\nWe report a case of angioedema in a 60-year-old man."
    title, abstract = text.split("\n\n")
    cue = declared_design(title, abstract)
    assert cue is not None and cue.design == "case_report"
    assert text[cue.start:cue.end] == cue.text == "We report a case"
    # In an abstract, words that name other work do not declare the design.
    assert declared_design("ACE inhibitors and cough", "Case reports have described cough. "
                           "Collins' meta-analyses showed it.") is None


def test_features_ignore_section_labels_and_numbers() -> None:
    f = features("METHODS: We randomised 120 women. RESULTS: 2.5 mg")
    assert "methods" not in f and "results" not in f
    assert "we randomised" in f and "# women" in f and "#" in f
