"""Build leads' MeSH package data from the shared MeSH 2024 TSV files.

    python scripts/build_mesh_data.py [--source ../shared/data/vocab/mesh] [--out src/leads/vocab/data/mesh2024.json.gz]

Reads ``mesh_thesaurus_2024.tsv.gz`` (descriptor x term), ``mesh_trees_2024.tsv.gz`` (tree numbers)
and ``mesh_pharmacological_actions_2024.tsv.gz`` and writes one gzip'd JSON object, column-wise so
that :meth:`leads.vocab.Mesh.load` mostly splits long strings instead of building objects:

- ``descriptors``: ``[ui, name, "tree|tree", "actionUI|actionUI", n_terms, n_lookup_only]`` in UI
  order; their terms follow each other in the term columns: the name, the entry terms in MeSH
  order, then ``n_lookup_only`` MeSH permuted forms kept for lookup only.
- ``terms``, ``flags``, ``keys``, ``bags``: newline-joined columns, one line per term: the text,
  its flags (``n`` narrower concept, ``a`` abbreviation/acronym, ``t`` trade name, ``l`` lab
  number, ``c`` has an acronym that must match in capitals, ``p`` lookup only), its
  :func:`~leads.vocab.mesh.normalize_term` key and its any-order key (empty if the same,
  ``-`` if the term has only stopwords).
- ``alt``: ``[term, key]`` for de-inverted terms ("Leukemia, Myeloid, Acute" -> "acute myeloid
  leukemia") whose key adds something.
- ``exact_multi``, ``ordered_multi``, ``bags_multi``: every key shared by several terms, with all
  of them; ``first_len``: the longest key (in words) starting with each word, where over one.

MeSH permuted forms that normalisation derives (plural, word order, hyphens) are dropped. The
output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from leads.vocab.mesh import (  # noqa: E402
    _TOKEN_RE,
    DATA_FORMAT,
    MESH_VERSION,
    NORMALIZER_VERSION,
    _bag,
    _deinvert,
    _is_acronym,
    normalize_term,
)

SOURCE = "jaytimm/mesh-resources@c72a6a5889 (from NLM desc2024 and mtrees2024)"


def _rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def build(source: Path) -> dict[str, object]:
    thesaurus = _rows(source / f"mesh_thesaurus_{MESH_VERSION}.tsv.gz")
    trees = _rows(source / f"mesh_trees_{MESH_VERSION}.tsv.gz")
    actions = _rows(source / f"mesh_pharmacological_actions_{MESH_VERSION}.tsv.gz")

    names: dict[str, str] = {}
    rows_by_ui: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in thesaurus:
        names[r["DescriptorUI"]] = r["DescriptorName"]
        rows_by_ui[r["DescriptorUI"]].append(r)
    ui_by_name = {n: u for u, n in names.items()}

    tree_numbers: dict[str, set[str]] = defaultdict(set)
    for r in trees:
        tree_numbers[r["DescriptorUI"]].add(r["tree_location"])
        # The source leaves out the first-level headings (C14 Cardiovascular Diseases, ...) but
        # names them in every row: put them back so that they can be exploded too.
        top = ui_by_name.get(r["mesh1"])
        if top is not None:
            tree_numbers[top].add(r["tree1"])

    drug_actions: dict[str, set[str]] = defaultdict(set)
    skipped_actions = 0
    for r in actions:
        if r["DescriptorUI"] in names and r["PharmActionUI"] in names:
            drug_actions[r["DescriptorUI"]].add(r["PharmActionUI"])
        else:
            skipped_actions += 1  # supplementary concept records (C...), which have no names here

    descriptors = []
    texts: list[str] = []
    flags_col: list[str] = []
    keys_col: list[str] = []
    alt: list[tuple[int, str]] = []
    stats = {"descriptors": 0, "terms": 0, "lookup_only_permutations": 0, "dropped_permutations": 0}
    for ui in sorted(names):
        rows = rows_by_ui[ui]
        name = names[ui]
        preferred = next(r["ConceptUI"] for r in rows if r["RecordPreferredTermYN"] == "Y")
        terms: list[tuple[str, str, str, str | None]] = []  # text, flags, key, alt key
        seen: set[str] = set()
        keys: set[str] = set()
        permuted: list[dict[str, str]] = []
        for r in sorted(rows, key=lambda r: r["TermName"] != name):  # the name first
            if r["IsPermutedTermYN"] == "Y":
                permuted.append(r)
                continue
            text = " ".join(r["TermName"].split())
            if text in seen:
                continue
            seen.add(text)
            key = normalize_term(text)
            alt_key = normalize_term(_deinvert(text))
            if alt_key == key or alt_key in keys:
                alt_key = None
            terms.append((text, _flags(r, preferred), key, alt_key))
            keys.update(k for k in (key, alt_key) if k)
        n_lookup = 0
        bags = {_bag(k) for k in keys}
        for r in permuted:
            text = " ".join(r["TermName"].split())
            key = normalize_term(text)
            # Same words as a term already there, in some order: the reordered lookup finds it.
            if text in seen or key in keys or _bag(key) in bags:
                stats["dropped_permutations"] += 1
                continue
            seen.add(text)
            keys.add(key)
            bags.add(_bag(key))
            terms.append((text, "".join(sorted(_flags(r, preferred) + "p")), key, None))
            n_lookup += 1
        stats["lookup_only_permutations"] += n_lookup
        for text, flags, key, alt_key in terms:
            if alt_key:
                alt.append((len(texts), alt_key))
            texts.append(text)
            flags_col.append(flags)
            keys_col.append(key)
        descriptors.append(
            [
                ui,
                name,
                "|".join(sorted(tree_numbers.get(ui, ()))),
                "|".join(sorted(drug_actions.get(ui, ()))),
                len(terms),
                n_lookup,
            ]
        )
    stats["descriptors"] = len(descriptors)
    stats["terms"] = len(texts)
    stats["skipped_action_rows"] = skipped_actions

    bags_col = [_bag(k) for k in keys_col]
    exact: dict[str, list[int]] = defaultdict(list)
    ordered: dict[str, list[int]] = defaultdict(list)
    by_bag: dict[str, list[int]] = defaultdict(list)
    first_len: dict[str, int] = {}
    for ti, (text, key, bag) in enumerate(zip(texts, keys_col, bags_col, strict=True)):
        exact[text.casefold()].append(ti)
        ordered[key].append(ti)
        if bag:
            by_bag[bag].append(ti)
    for ti, key in alt:
        ordered[key].append(ti)
    for key in ordered:
        words = key.split(" ")
        if len(words) > 1 and first_len.get(words[0], 0) < len(words):
            first_len[words[0]] = len(words)
    for text in texts:
        assert " ".join(text.split()) == text and "\n" not in text

    def multi(table: dict[str, list[int]]) -> dict[str, list[int]]:
        return {k: sorted(set(v)) for k, v in sorted(table.items()) if len(set(v)) > 1}

    return {
        "format": DATA_FORMAT,
        "mesh_version": MESH_VERSION,
        "normalizer": NORMALIZER_VERSION,
        "source": SOURCE,
        "stats": stats,
        "descriptors": descriptors,
        "terms": "\n".join(texts),
        "flags": "\n".join(flags_col),
        "keys": "\n".join(keys_col),
        # The any-order key of each term: empty where it equals the ordered key, "-" where it is
        # empty (only stopwords).
        "bags": "\n".join(
            "" if b == k else (b or "-") for b, k in zip(bags_col, keys_col, strict=True)
        ),
        "alt": alt,
        "exact_multi": multi(exact),
        "ordered_multi": multi(ordered),
        "bags_multi": multi(by_bag),
        "first_len": dict(sorted(first_len.items())),
    }


def _flags(r: dict[str, str], preferred_concept: str) -> str:
    flags = set()
    if r["ConceptUI"] != preferred_concept:
        flags.add("n")
    tag = r["LexicalTag"]
    if tag in ("ABB", "ACR"):
        flags.add("a")
    elif tag == "TRD":
        flags.add("t")
    elif tag == "LAB":
        flags.add("l")
    if any(_is_acronym(t) for t in _TOKEN_RE.findall(r["TermName"])):
        flags.add("c")
    return "".join(sorted(flags))


def write(data: dict[str, object], out: Path) -> None:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    # mtime=0 and no file name: the same input gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=REPO.parent / "shared" / "data" / "vocab" / "mesh"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "src" / "leads" / "vocab" / "data" / "mesh2024.json.gz"
    )
    args = parser.parse_args(argv)
    data = build(args.source)
    write(data, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {data['stats']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
