"""The train/test split never puts a review, trial or article on both sides."""

from __future__ import annotations

from collections import Counter

from leads.instruct.example import Example
from leads.instruct.split import components, split_examples


def _example(i: int, task: str, groups: list[str]) -> Example:
    return Example(task=task, source="s", item=f"i{i}", messages=[], input={}, answer={}, groups=groups,
                   licence="", hash=str(i))


def _sides(examples: list[Example]) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = {}
    for example in examples:
        for key in example.groups:
            sides.setdefault(key, set()).add(example.split or "")
    return sides


def test_shared_keys_join_components_transitively() -> None:
    examples = [_example(0, "pico", ["pmid:1"]), _example(1, "results", ["pmid:1", "pmc:9"]),
                _example(2, "characteristics", ["pmc:9"]), _example(3, "pico", ["pmid:2"])]
    parts = components(examples)
    assert sorted(sorted(p.members) for p in parts) == [[0, 1, 2], [3]]


def test_no_group_key_on_both_sides_and_each_task_keeps_training_data() -> None:
    examples = []
    for i in range(300):
        review = f"review:{i % 37}"
        keys = [review, f"pmid:{i}"] + ([f"pmid:{i - 1}"] if i % 11 == 0 and i else [])
        examples.append(_example(i, ("pico", "results", "eligibility")[i % 3], keys))
    split_examples(examples, test_fraction=0.2, seed=3)
    assert all(len(sides) == 1 for sides in _sides(examples).values())
    counts = Counter((e.task, e.split) for e in examples)
    for task in ("pico", "results", "eligibility"):
        assert counts[(task, "train")] > 0 and counts[(task, "test")] > 0
    # The share held out follows the fraction, in whole components.
    test = sum(1 for e in examples if e.split == "test")
    assert 0.1 * len(examples) < test < 0.4 * len(examples)


def test_split_is_fixed_by_the_seed() -> None:
    def run(seed: int) -> list[str | None]:
        examples = [_example(i, "pico", [f"review:{i % 20}"]) for i in range(100)]
        split_examples(examples, test_fraction=0.3, seed=seed)
        return [e.split for e in examples]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_a_task_with_one_component_stays_in_train() -> None:
    examples = [_example(i, "search_query", ["review:only"]) for i in range(5)]
    split_examples(examples, test_fraction=0.5, seed=0)
    assert {e.split for e in examples} == {"train"}
