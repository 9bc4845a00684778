"""Forest plots: structure of the SVG (rows linked to provenance), determinism, PNG output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from leads.synthesis import (
    BinaryStudy,
    Provenance,
    SynthesisError,
    SynthesisInput,
    forest_plot,
    load_input,
    meta_analysis,
)

NS = {"svg": "http://www.w3.org/2000/svg", "xlink": "http://www.w3.org/1999/xlink"}


def with_quotes(bcg: SynthesisInput) -> SynthesisInput:
    """BCG with provenance on the first study's counts (as an extraction store would fill it)."""
    first = bcg.studies[0]
    assert isinstance(first, BinaryStudy)
    quote = Provenance(record_id=101, value_id="v-1", call_id=9, quote="4 of 123 vaccinated developed TB",
                       start=120, end=152)
    treatment = first.treatment.model_copy(update={"sources": {"events": [quote]}})
    studies = [first.model_copy(update={"treatment": treatment, "record_id": 101}), *bcg.studies[1:]]
    return bcg.model_copy(update={"studies": studies})


def test_svg_rows_carry_provenance(bcg: SynthesisInput) -> None:
    result = meta_analysis(with_quotes(bcg), "RR", tau2_method="REML")
    svg = forest_plot(result, link_template="/records/{record_id}")
    root = ET.fromstring(svg)
    rows = root.findall(".//svg:g[@class='leads-study']", NS)
    assert [r.get("data-study-id") for r in rows] == [s.study_id for s in result.studies]
    first = rows[0]
    assert first.get("data-record-id") == "101"
    sources = json.loads(first.get("data-sources") or "[]")
    assert sources == [{"field": "treatment.events", "record_id": 101, "value_id": "v-1", "call_id": 9,
                        "quote": "4 of 123 vaccinated developed TB", "start": 120, "end": 152}]
    title = first.find("svg:title", NS)
    assert title is not None and "4 of 123 vaccinated developed TB" in (title.text or "")
    assert "Aronson 1948: RR 0.41 [0.13, 1.26]" in (title.text or "")
    link = first.find("svg:a", NS)
    assert link is not None and link.get(f"{{{NS['xlink']}}}href") == "/records/101"
    # the row's drawn elements (label, interval, square, numbers) are inside the row element
    ids = {el.get("id") for el in first.iter() if el.get("id")}
    assert {"leads-study-0-label", "leads-study-0-ci", "leads-study-0-point", "leads-study-0-estimate",
            "leads-study-0-weight"} <= ids
    texts = "".join(t.text or "" for t in first.iter(f"{{{NS['svg']}}}text"))
    assert "Aronson 1948" in texts and "4/123" in texts
    weights = [float(r.get("data-weight") or 0) for r in rows]
    assert sum(weights) == pytest.approx(100.0)
    assert float(rows[0].get("data-estimate") or 0) == pytest.approx(result.studies[0].display_estimate)


def test_svg_pooled_rows_list_their_studies(bcg: SynthesisInput) -> None:
    result = meta_analysis(bcg, "RR")
    root = ET.fromstring(forest_plot(result, show="both"))
    pooled = {g.get("data-model"): g for g in root.findall(".//svg:g[@class='leads-pooled']", NS)}
    assert set(pooled) == {"fixed", "random"}
    random = pooled["random"]
    assert float(random.get("data-estimate") or 0) == pytest.approx(result.random.display_estimate)
    listed = json.loads(random.get("data-studies") or "[]")
    assert [s["study_id"] for s in listed] == [s.study_id for s in result.studies]
    assert sum(s["weight"] for s in listed) == pytest.approx(100.0)
    title = random.find("svg:title", NS)
    assert title is not None and "Random effects (DerSimonian-Laird)" in (title.text or "")
    assert "Prediction interval" in (title.text or "")
    assert root.find(".//svg:g[@class='leads-prediction']", NS) is not None
    het = root.find(".//svg:g[@id='leads-heterogeneity']", NS)
    assert het is not None
    het_text = "".join(t.text or "" for t in het.iter(f"{{{NS['svg']}}}text"))
    assert "Q = 152.23, df = 12" in het_text and "I² = 92%" in het_text


def test_output_is_deterministic_and_undated(bcg: SynthesisInput, tmp_path: Path) -> None:
    result = meta_analysis(bcg, "OR", model="fixed", fixed_method="MH")
    first = forest_plot(result, tmp_path / "a.svg", title="BCG vaccine")
    second = forest_plot(result, tmp_path / "b.svg", title="BCG vaccine")
    assert first == second == (tmp_path / "a.svg").read_bytes()
    assert b"dc:date" not in first and b"<dc:date" not in first
    png1 = forest_plot(result, tmp_path / "a.png")
    png2 = forest_plot(result, fmt="png")
    assert png1.startswith(b"\x89PNG\r\n\x1a\n") and png1 == png2


def test_continuous_and_small_effects_are_formatted(synthesis_fixtures: Path) -> None:
    smd = meta_analysis(load_input(synthesis_fixtures / "smd_chen_peace.csv"), "SMD")
    svg = forest_plot(smd).decode()
    assert "94 (22) 60" in svg and "SMD [95% CI]" in svg
    rd = meta_analysis(load_input(synthesis_fixtures / "bcg.csv"), "RD", model="fixed")
    root = ET.fromstring(forest_plot(rd))
    estimate = root.find(".//svg:g[@id='leads-pooled-fixed-estimate']", NS)
    assert estimate is not None
    text = "".join(t.text or "" for t in estimate.iter(f"{{{NS['svg']}}}text"))
    assert text == "−0.00091 [−0.00136, −0.00047]"  # metafor: -0.0009 [-0.0014, -0.0005]


def test_plot_errors(bcg: SynthesisInput, tmp_path: Path) -> None:
    result = meta_analysis(bcg, "RR")
    with pytest.raises(SynthesisError, match="plot format"):
        forest_plot(result, tmp_path / "plot.pdf")
    with pytest.raises(SynthesisError, match="unknown field"):
        forest_plot(result, link_template="/x/{nope}")
    with pytest.raises(SynthesisError, match="show option"):
        forest_plot(result, show="all")  # type: ignore[arg-type]
