"""A leak-free train/test split: examples that share any group key land on the same side.

Each example carries group keys: its review (``review:...``, ``project:...``), trial
(``nct:...``), article (``pmid:...``, ``pmc:...``) or, for a document without an identifier, a
hash of its text (``text:...``). Examples are joined into components by shared keys (union-find),
so a review, a trial or an article never has examples on both sides, even across tasks and
sources. Components are then visited in an order fixed by the seed, and a component goes to the
test side while some task it holds has fewer test examples than its share (``test_fraction``),
never taking the last train component of a task.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from leads.instruct.example import Example

__all__ = ["Component", "components", "split_examples"]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Component:
    """Examples joined by shared group keys."""

    id: str
    keys: list[str]
    members: list[int]
    tasks: Counter[str]


def components(examples: Sequence[Example]) -> list[Component]:
    """The connected components of the examples' group keys, in a deterministic order."""
    uf = _UnionFind()
    for example in examples:
        first = example.groups[0]
        for key in example.groups:
            uf.union(first, key)
    members: dict[str, list[int]] = defaultdict(list)
    keys: dict[str, set[str]] = defaultdict(set)
    for index, example in enumerate(examples):
        root = uf.find(example.groups[0])
        members[root].append(index)
        keys[root].update(example.groups)
    return [Component(id=root, keys=sorted(keys[root]), members=members[root],
                      tasks=Counter(examples[i].task for i in members[root])) for root in sorted(members)]


def _order(component: Component, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{component.id}".encode()).hexdigest()


def split_examples(examples: Sequence[Example], *, test_fraction: float = 0.15, seed: int = 0) -> list[Component]:
    """Set ``split`` to ``"train"`` or ``"test"`` on every example; returns the components."""
    if not 0 <= test_fraction < 1:
        raise ValueError("test_fraction must be in [0, 1)")
    parts = components(examples)
    totals: Counter[str] = Counter(example.task for example in examples)
    target = {task: test_fraction * count for task, count in totals.items()}
    train_left: Counter[str] = Counter()
    for part in parts:
        for task in part.tasks:
            train_left[task] += 1
    tested: Counter[str] = Counter()
    for part in sorted(parts, key=lambda p: _order(p, seed)):
        wanted = any(tested[task] < target[task] for task in part.tasks)
        last = any(train_left[task] <= 1 for task in part.tasks)
        side = "test" if wanted and not last else "train"
        if side == "test":
            tested.update(part.tasks)
            for task in part.tasks:
                train_left[task] -= 1
        for index in part.members:
            examples[index].split = side
    return parts
