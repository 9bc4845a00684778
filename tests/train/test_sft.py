"""Fine-tuning on CPU with a tiny randomly initialised Llama model and the MiniLM tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leads.tasks import TASKS
from leads.train.config import ConfigError, SFTConfig, load_config
from leads.train.data import IGNORE, encode, encode_all, minilm_tokenizer
from leads.train.sft import main

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 512}


def _conversation() -> list[dict[str, str]]:
    task = TASKS["pico"]
    inp = task.validate_input({"text": "Adults with asthma took budesonide; FEV1 was measured."})
    answer = {"participants": ["Adults with asthma"], "interventions": ["budesonide"], "outcomes": ["FEV1"]}
    return [*task.messages(inp), {"role": "assistant", "content": json.dumps(answer)}]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    line = json.dumps({"messages": _conversation(), "meta": {"task": "pico"}})
    path.write_text("\n".join([line] * 4) + "\n")
    return path


def test_loss_is_on_the_answer_only() -> None:
    tokenizer = minilm_tokenizer()
    messages = _conversation()
    ids, labels = encode(tokenizer, messages)
    assert len(ids) == len(labels)
    first = next(i for i, label in enumerate(labels) if label != IGNORE)
    assert all(label == IGNORE for label in labels[:first]) and all(label != IGNORE for label in labels[first:])
    answer = tokenizer.decode([ids[i] for i in range(first, len(ids))])
    assert 'participants' in answer and answer.rstrip().endswith("<|im_end|>")
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    assert ids[:first] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    kept, dropped = encode_all(tokenizer, [(messages, "pico")], max_len=first)
    assert kept == [] and dropped == 1


def _config(data: Path, out: Path, **overrides: object) -> SFTConfig:
    values: dict[str, object] = {"train_file": str(data), "output_dir": str(out), "tiny": TINY, "tokenizer": "minilm",
                                 "lora": False, "learning_rate": 3e-2, "max_steps": 24, "max_len": 512,
                                 "batch_size": 2, "grad_accum": 1, "warmup_ratio": 0.0, "logging_steps": 4,
                                 "eval_file": str(data), "threads": 1}
    values.update(overrides)
    return SFTConfig(**values)  # type: ignore[arg-type]


def test_full_fine_tuning_lowers_the_loss_and_saves_a_loadable_model(data: Path, tmp_path: Path) -> None:
    result = main(_config(data, tmp_path / "full"))
    assert result.steps == 24 and result.trainable_parameters == result.total_parameters
    assert result.last_loss < 0.5 * result.first_loss
    assert result.eval_loss_after < 0.5 * result.eval_loss_before
    lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["event"] == "train"] == [4, 8, 12, 16, 20, 24]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = Path(result.paths["merged"])
    model = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert tokenizer.chat_template and model.config.num_hidden_layers == 2
    assert json.loads((tmp_path / "full" / "result.json").read_text())["steps"] == 24


def test_lora_trains_adapters_only_and_merges_exactly(data: Path, tmp_path: Path) -> None:
    config = _config(data, tmp_path / "lora", lora=True, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                     learning_rate=2e-2, lora_targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"])
    result = main(config)
    assert result.trainable_parameters < 0.1 * result.total_parameters
    assert result.eval_loss_after < result.eval_loss_before
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(result.paths["merged"])
    tokenizer = minilm_tokenizer()
    torch.manual_seed(config.seed)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                        eos_token_id=tokenizer.eos_token_id, **TINY))
    ids = torch.tensor([encode(tokenizer, _conversation())[0]])
    with torch.no_grad():
        before = base(ids).logits
    adapted = PeftModel.from_pretrained(base, result.paths["adapter"])
    with torch.no_grad():
        after = merged(ids).logits
        assert torch.allclose(adapted(ids).logits, after, atol=1e-4)
    assert not torch.allclose(before, after, atol=1e-3)


def test_recipe_yaml(tmp_path: Path, data: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"train_file: {data}\noutput_dir: {tmp_path / 'o'}\ntiny: {{hidden_size: 32}}\n"
                      "tokenizer: minilm\nlora_targets: [q_proj, v_proj]\nmax_steps: 3\n")
    config = load_config(recipe, {"learning_rate": 0.001})
    assert config.lora_targets == ["q_proj", "v_proj"] and config.learning_rate == 0.001 and config.lora
    recipe.write_text(f"train_file: {data}\noutput_dir: x\nmodel: smollm2\nlearning_rat: 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*learning_rat"):
        load_config(recipe)
    recipe.write_text(f"train_file: {data}\noutput_dir: x\ntiny: {{hidden_size: 32}}\n")
    with pytest.raises(ConfigError, match="tokenizer"):
        load_config(recipe)
    recipe.write_text(f"train_file: {data}\noutput_dir: x\nmodel: smollm2\nexport_gguf: q4\n")
    with pytest.raises(ConfigError, match="export_gguf"):
        load_config(recipe)


def test_shipped_recipes_load() -> None:
    recipes = Path(__file__).resolve().parents[2] / "recipes"
    names = sorted(p.name for p in recipes.glob("*.yaml"))
    assert {"tiny-cpu.yaml", "smollm2-lora.yaml"} <= set(names)
    for path in recipes.glob("*.yaml"):
        load_config(path)
