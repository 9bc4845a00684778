"""GGUF export: llama.cpp's layout written offline with the gguf package, read back by transformers
and run by llama.cpp (slow: they read the 98 MB SmolLM2 GGUF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leads.train.export import write_gguf

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("gguf")
    from leads.engines.llamacpp import default_model_path
    from leads.errors import EngineError

    try:
        return default_model_path()
    except EngineError as exc:
        pytest.skip(str(exc))


def _tiny_with_smollm2_vocab() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return LlamaForCausalLM(config).eval()


def test_tiny_model_round_trips_through_gguf(smollm2: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = _tiny_with_smollm2_vocab()
    for kind, tolerance in (("f32", 0.0), ("f16", 1e-3), ("q8_0", 2e-2)):
        path = write_gguf(model, tmp_path / f"tiny-{kind}.gguf", template=smollm2, file_type=kind, name="tiny")
        back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, dtype=torch.float32)
        original, loaded = model.state_dict(), back.state_dict()
        assert set(original) == set(loaded)
        worst = max(float((original[k] - loaded[k]).abs().max()) for k in original)
        assert worst <= tolerance, (kind, worst)


def test_llamacpp_runs_the_exported_file(smollm2: Path, tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from leads.engines import get_engine
    from leads.errors import EngineError
    from leads.tasks import TASKS

    path = write_gguf(_tiny_with_smollm2_vocab(), tmp_path / "tiny.gguf", template=smollm2, file_type="q8_0")
    engine = get_engine("llamacpp", model_path=str(path), n_ctx=1024, max_tokens=48, max_attempts=1)
    try:
        # A random model answers nonsense, but llama.cpp must load the file, apply the chat
        # template and tokenizer copied from SmolLM2 and decode under the task's JSON schema.
        assert engine.backend.count_prompt_tokens([{"role": "user", "content": "Hello"}]) > 3  # type: ignore[attr-defined]
        try:
            engine.run(TASKS["search_query"], {"population": "adults with asthma"})
        except EngineError as exc:
            raw = exc.attempts[0]["raw"]  # type: ignore[attr-defined]
            assert raw.lstrip().startswith("{")
    finally:
        engine.close()


def test_smollm2_fine_tune_export_and_replay(smollm2: Path, tmp_path: Path) -> None:
    """The whole path on the real model: LoRA steps, merge, GGUF, llama.cpp answers a held-out example."""
    pytest.importorskip("xllamacpp")
    from leads.engines import get_engine
    from leads.instruct import BuildOptions, build
    from leads.instruct.evaluate import evaluate_examples
    from leads.instruct.example import read_examples
    from leads.train.config import SFTConfig
    from leads.train.sft import main

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "instruct" / "shared"
    data = tmp_path / "data"
    build(BuildOptions(out=data, shared=fixture, sources=["corpora/rct-art"], test_fraction=0.3))
    config = SFTConfig(model="smollm2", train_file=str(data / "train.jsonl"), eval_file=str(data / "test.jsonl"),
                       output_dir=str(tmp_path / "run"), lora=True, lora_r=4, lora_alpha=8, max_steps=2,
                       max_examples=4, max_eval_examples=2, max_len=768, batch_size=1, grad_accum=1,
                       learning_rate=1e-4, export_gguf="q8_0", threads=1)
    result = main(config)
    assert result.steps == 2 and result.eval_loss_before is not None and result.eval_loss_after is not None
    gguf = Path(result.paths["gguf"])
    assert gguf.stat().st_size > 100e6
    assert json.loads((Path(result.paths["merged"]) / "config.json").read_text())["model_type"] == "llama"
    engine = get_engine("llamacpp", model_path=str(gguf), n_ctx=2048, max_tokens=256, max_attempts=1)
    try:
        scores = evaluate_examples(read_examples(data / "test.jsonl"), engine, limit=1)
    finally:
        engine.close()
    assert scores["overall"]["n"] == 1 and scores["model"] == gguf.stem
