"""The review report on a small real project: two trials of the bundled remdesivir review with
their full texts, extracted by the classic engine, screened partly by a person and partly by the
AI unattended."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner

from leads.documents.store import add_document, get_document
from leads.extract.project import run_extraction
from leads.project import Project
from leads.report import build_report
from leads.report.cli import report_command

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "remdesivir"
OUTCOME = {"outcome": "Mortality up to day 28", "intervention": "Remdesivir",
           "comparator": "Placebo or standard care", "outcome_type": "binary"}
SECTIONS = ("question", "searches", "prisma", "screening", "characteristics", "results", "registry", "methods",
            "provenance")


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report") / "review"
    with Project.init(directory, name="Remdesivir report test", actor="alice") as project:
        project.set_question(population="People with COVID-19", intervention="Remdesivir",
                             comparison="Placebo or standard care", outcome="All-cause mortality up to day 28")
        project.set_criteria(["The study is a randomised controlled trial",
                              "Participants are people with COVID-19"], [])
        project.import_file(EXAMPLE / "records.nbib")
        ids = {s.record.pmcid: s.id for s in project.iter_records()}
        wang, who, other = ids["PMC7190303"], ids["PMC7727327"], ids["PMC3580751"]
        # the AI decided three records unattended; alice decided the same three (and disagreed once)
        for record_id, label in ((wang, "include"), (who, "include"), (other, "include")):
            project.decide(record_id, label, actor="ai:classic", actor_kind="ai")
        for record_id, label in ((wang, "include"), (who, "include"), (other, "exclude")):
            project.decide(record_id, label, reasons=["not COVID-19"] if label == "exclude" else ())
        docs = {pmcid: add_document(project, EXAMPLE / "fulltexts" / f"{pmcid}.xml", record_id=ids[pmcid]).document
                for pmcid in ("PMC7190303", "PMC7727327")}
        run_extraction(project, tasks=("results",), outcomes=[OUTCOME])
        # alice enters a characteristic herself, with the sentence it is read from
        text = get_document(project, docs["PMC7190303"].id).text
        quote = "237 patients were enrolled and randomly assigned to a treatment group"
        start = text.index(quote)
        project.enter_extraction(wang, "characteristics", "randomised N", "237",
                                 evidence=[{"quote": quote, "start": start, "end": start + len(quote)}],
                                 document_id=docs["PMC7190303"].id)
    return directory


@pytest.fixture(scope="module")
def report(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("out")
    with Project.open(project_dir) as project:
        paths = build_report(project, out)
        rows = project.extractions(task="results")
    return {"paths": paths, "out": out, "rows": rows, "html": (out / "report.html").read_text(encoding="utf-8"),
            "md": (out / "report.md").read_text(encoding="utf-8")}


def test_writes_html_markdown_and_figures(report: dict[str, object]) -> None:
    out = report["out"]
    assert isinstance(out, Path)
    names = sorted(p.name for p in report["paths"])  # type: ignore[attr-defined]
    assert names == ["forest-mortality-up-to-day-28.svg", "prisma.svg", "report.html", "report.md"]
    assert all((out / n).stat().st_size > 0 for n in names)


def test_html_is_self_contained(report: dict[str, object]) -> None:
    html = str(report["html"])
    for section in SECTIONS:
        assert f'id="{section}"' in html
    # nothing is fetched: no scripts, style sheets, images or fonts from elsewhere
    assert not re.search(r"<(?:script|link|img|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", html, re.I)
    links = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', html)
    assert links and all(link.startswith("#") for link in links), [x for x in links if not x.startswith("#")]
    # every in-page link lands somewhere
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    assert {link[1:] for link in links} <= ids
    assert html.count("<svg") == 2  # the PRISMA diagram and the forest plot, inlined


def test_characteristics_table(report: dict[str, object]) -> None:
    html = str(report["html"])
    table = html.split('id="characteristics">', 1)[1].split("</table>", 1)[0]
    assert "<th>randomised N</th>" in table and "Wang 2020" in table and ">237</a>" in table
    assert "alice (human) (title/abstract)" in table and "NCT04257656" in table


def test_numbers_link_to_the_extracted_value_and_its_quote(report: dict[str, object]) -> None:
    html = str(report["html"])
    rows = report["rows"]
    assert isinstance(rows, list)
    wang = next(r for r in rows if r["value"]["values"][0]["value"] == "22")
    # the events cell of the results table links to the extraction row ...
    assert f'<a href="#x{wang["id"]}">22</a>' in html and f'<a href="#x{wang["id"]}">158</a>' in html
    # ... whose block shows the located quote
    block = html.split(f'<div id="x{wang["id"]}">', 1)[1].split("</div>", 1)[0]
    quote = next(e["quote"] for e in wang["evidence"] if "22" in e["quote"])
    assert quote.replace("'", "&#x27;") in block or quote in block.replace("&#x27;", "'")
    assert f"chars {wang['evidence'][0]['start']}" in block
    # the forest plot's study row links to the same extracted value; the study names link to its section
    figure = html.split('id="results">', 1)[1].split("</figure>", 1)[0]
    assert f'href="#x{wang["id"]}"' in figure and 'class="leads-study"' in figure
    assert f'href="#study-record-{wang["record_id"]}"' in html and f'id="study-record-{wang["record_id"]}"' in html


def test_screening_statistics_and_methods(report: dict[str, object]) -> None:
    html, md = str(report["html"]), str(report["md"])
    # 3 records decided by both: agreement 2 of 3; the standing decisions are alice's
    assert "<td class=n>67%</td>" in html
    assert "| title abstract | 3 | 2 | 1 | 0 | 3 | 0 | 3 | 67% |" in md
    methods = unescape(html.split('id="methods">Methods</h2>', 1)[1].split("</p>", 1)[0])
    assert "3 were made by people and 0 were unattended AI decisions" in methods
    assert "agreed on 67%" in methods
    assert "classic/results" in methods and "prompt hashes" in methods
    assert "1 as reviewers' values" in methods and "by alice" in methods


def test_markdown_has_every_section(report: dict[str, object]) -> None:
    md = str(report["md"])
    for heading in ("## Question", "## Searches", "## PRISMA 2020 flow diagram", "## Screening",
                    "## Included studies", "## Results", "## Registry cross-check (ClinicalTrials.gov)",
                    "## Methods", "## Extracted values and their quotes"):
        assert f"\n{heading}\n" in md
    assert "![PRISMA 2020 flow diagram](prisma.svg)" in md
    assert "![Forest plot: Mortality up to day 28](forest-mortality-up-to-day-28.svg)" in md
    assert re.search(r"\*\*RR \d\.\d\d \[\d\.\d\d, \d\.\d\d\]\*\*", md)
    for anchor in set(re.findall(r"\]\(#(x\d+)\)", md)):
        assert f'<a id="{anchor}"></a>' in md


def test_cli_writes_the_report(project_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(report_command, ["-p", str(project_dir), "-o", str(tmp_path / "r"),
                                                 "--format", "md"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.md").is_file() and not (tmp_path / "r" / "report.html").exists()
    missing = CliRunner().invoke(report_command, ["-p", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0
