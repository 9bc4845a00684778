"""``leads simulate``: the command-line contract of docs/design (DESIGN.md) and the simulation.

Fixture: ``tests/fixtures/screen/nsaids_300.csv``, the first 300 rows of the Cohen 2006 NSAIDS
review (title, abstract, label_included; 32 relevant) from asreview/systematic-review-datasets
(MIT; Cohen AM et al., JAMIA 2006, doi:10.1197/jamia.M1929).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from leads.formats import read_records
from leads.screen.cli import simulate_command
from leads.screen.simulate import parse_criteria, random_priors, simulate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "screen" / "nsaids_300.csv"
N = 300
RELEVANT_ROW, IRRELEVANT_ROW = 8, 0  # label_included 1 and 0 in the fixture


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_CACHE", str(tmp_path / "cache"))


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(simulate_command, [str(FIXTURE), "--no-embeddings", *args])
    return result.exit_code, result.stdout, result.output


def read_order(path: Path) -> list[int]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [int(line) for line in lines]


def test_order_out_is_a_permutation_with_priors_first(tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    code, stdout, _ = run_cli("--prior-ids", f"{RELEVANT_ROW},{IRRELEVANT_ROW}", "--seed", "1",
                              "--order-out", str(out), "--json")
    assert code == 0, stdout
    order = read_order(out)
    assert len(order) == N
    assert order[:2] == [RELEVANT_ROW, IRRELEVANT_ROW]
    assert sorted(order) == list(range(N))
    payload = json.loads(stdout)
    assert payload["priors"] == [RELEVANT_ROW, IRRELEVANT_ROW]
    assert payload["mode"] == "given priors"
    assert payload["n_records"] == N and payload["n_relevant"] == 32
    metrics = payload["metrics"]
    for key in ("wss_95", "recall_at_10", "recall_at_25", "screened_to_95", "atd", "n_records",
                "n_relevant", "records_to_95"):
        assert key in metrics
    # priors are excluded from N and from the relevant count
    assert metrics["n_records"] == N - 2 and metrics["n_relevant"] == 31
    # prioritised screening beats random order on a real review
    assert metrics["wss_95"] > 0.2 and metrics["recall_at_25"] > 0.5
    assert set(payload["stopping"]) >= {"50 consecutive irrelevant"}
    assert payload["rerank_ms"]["count"] > 0
    assert payload["estimate_at_stop"]["confidence"] == 0.95


def test_metrics_match_the_order_written(tmp_path: Path) -> None:
    from leads.screen.metrics import screening_metrics

    out = tmp_path / "order.txt"
    code, stdout, _ = run_cli("--prior-ids", f"{RELEVANT_ROW},{IRRELEVANT_ROW}", "--order-out", str(out),
                              "--json")
    assert code == 0
    labels = [bool(r.label) for r in read_records(FIXTURE)]
    again = screening_metrics(read_order(out), labels, [RELEVANT_ROW, IRRELEVANT_ROW])
    assert json.loads(stdout)["metrics"]["wss_95"] == pytest.approx(again.wss_95)


def test_same_seed_same_order_and_random_priors_follow_the_seed(tmp_path: Path) -> None:
    orders = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        out = tmp_path / f"{name}.txt"
        code, stdout, _ = run_cli("--random-priors", "1", "--seed", seed, "--order-out", str(out), "--json")
        assert code == 0, stdout
        orders.append(read_order(out))
        payload = json.loads(stdout)
        assert payload["mode"] == "random priors" and len(payload["priors"]) == 2
        labels = [bool(r.label) for r in read_records(FIXTURE)]
        assert [labels[i] for i in payload["priors"]] == [True, False]
    assert orders[0] == orders[1]
    assert orders[0][:2] != orders[2][:2]


def test_zero_shot_from_a_query(tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    code, stdout, _ = run_cli("--query", "NSAIDs randomized controlled trials", "--order-out", str(out),
                              "--json")
    assert code == 0, stdout
    payload = json.loads(stdout)
    assert payload["mode"] == "zero-shot" and payload["priors"] == []
    order = read_order(out)
    assert sorted(order) == list(range(N))
    assert payload["metrics"]["n_records"] == N
    assert payload["metrics"]["wss_95"] > 0.1


def test_criteria_file_project_and_plot(tmp_path: Path) -> None:
    criteria = tmp_path / "criteria.txt"
    criteria.write_text("- Randomized controlled trial of an NSAID\n"
                        "- Patients with osteoarthritis or rheumatoid arthritis\n"
                        "Exclusion: review articles\n", encoding="utf-8")
    plot = tmp_path / "curve.svg"
    project_dir = tmp_path / "project"
    code, stdout, _ = run_cli("--criteria-file", str(criteria), "--no-verdicts", "--seed", "2",
                              "--plot", str(plot), "--project", str(project_dir))
    assert code == 0, stdout
    assert "WSS@95" in stdout
    assert b"<svg" in plot.read_bytes()[:500]

    from leads.project import Project

    with Project.open(project_dir) as project:
        decisions = project.current_decisions()
        assert len(decisions) == N
        assert {d["actor"] for d in decisions.values()} == {"simulation"}
        assert sum(d["label"] == "include" for d in decisions.values()) == 32
        kinds = [c["kind"] for c in project.criteria()]
        assert kinds == ["inclusion", "inclusion", "exclusion"]


def test_bad_arguments() -> None:
    code, _, output = run_cli("--prior-ids", "1,x")
    assert code != 0 and "record ids" in output
    code, _, output = run_cli("--prior-ids", "1", "--random-priors", "1")
    assert code != 0 and "not both" in output
    with pytest.raises(Exception, match="out of range"):
        simulate(list(read_records(FIXTURE)), priors=[N + 5], embeddings=False)


def test_parse_criteria() -> None:
    parsed = parse_criteria("1. Adults\n\n* RCTs\n[EXCLUSION] animal studies\nExclusion criteria: reviews\n")
    assert [(c.kind, c.text) for c in parsed] == [
        ("inclusion", "Adults"), ("inclusion", "RCTs"), ("exclusion", "animal studies"), ("exclusion", "reviews")]


def test_random_priors_and_verdict_features() -> None:
    labels = np.array([True, False, False, True, False])
    priors = random_priors(labels, seed=3)
    assert labels[priors[0]] and not labels[priors[1]]
    assert random_priors(labels, seed=3) == priors
    # verdict scores from an engine's eligibility task become features
    records = list(read_records(FIXTURE))[:10]
    if not any(r.label for r in records):  # pragma: no cover - fixture guard
        pytest.skip("no relevant record in the first 10 rows")
    try:
        from leads.engines.classic import implementations

        has_classic = "eligibility" in implementations()
    except Exception:  # pragma: no cover - the classic assessor is optional here
        has_classic = False
    if not has_classic:
        pytest.skip("the classic eligibility assessor is not installed")
    result = simulate(records, priors=[8, 0], criteria="Randomized controlled trial\n",
                      verdicts=True, embeddings=False, engine="classic", embeddings_cache=None)
    assert any(f.startswith("verdicts") for f in result.features)
    assert sorted(result.order) == list(range(10))


def test_design_and_embedding_features_by_default(tmp_path: Path) -> None:
    records = list(read_records(FIXTURE))[:80]
    labels = np.array([bool(r.label) for r in records])
    relevant, irrelevant = int(np.flatnonzero(labels)[0]), int(np.flatnonzero(~labels)[0])
    plain = simulate(records, priors=[relevant, irrelevant], design=False, embeddings=False,
                     embeddings_cache=tmp_path)
    assert plain.features == ["tfidf"]
    with_design = simulate(records, priors=[relevant, irrelevant], query="NSAIDs randomized controlled trials",
                           embeddings=False, embeddings_cache=tmp_path)
    assert with_design.features == ["tfidf", "design"]
    assert sorted(with_design.order) == list(range(80))
    from leads.screen.embeddings import Embedder

    if not Embedder.available():
        pytest.skip("the MiniLM model is not installed")
    full = simulate(records, priors=[relevant, irrelevant], query="NSAIDs randomized controlled trials",
                    embeddings_cache=tmp_path)
    assert full.features == ["tfidf", "embeddings", "design"]
    assert full.order[:2] == [relevant, irrelevant] and sorted(full.order) == list(range(80))
    again = simulate(records, priors=[relevant, irrelevant], query="NSAIDs randomized controlled trials",
                     embeddings=True, embeddings_cache=tmp_path)
    assert again.order == full.order  # deterministic, and the cached embeddings give the same run
    assert full.metrics.wss_95 > 0.1
