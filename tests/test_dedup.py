"""Tests of leads.dedup: identifier rules, fuzzy matching, negatives, blocking, grouping."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.dedup import (
    DEFAULT_THRESHOLD,
    RULES,
    DuplicateLink,
    candidate_pairs,
    choose_primary,
    find_duplicates,
    first_author_surname,
    group_duplicates,
    is_preprint_doi,
    normalize_title,
)
from leads.records import Record

TITLE = "Effect of low-dose enalapril on renal function in normotensive type 1 diabetic patients"
ABSTRACT = (
    "To investigate the effect of low doses of the angiotensin converting enzyme inhibitor "
    "enalapril on renal haemodynamics and albuminuria in normotensive and hypertensive type 1 "
    "diabetic patients with incipient or overt nephropathy, twenty-two patients were studied."
)


def rec(**fields: Any) -> Record:
    base: dict[str, Any] = {
        "title": TITLE,
        "authors": ["Hansen, K. W.", "Pedersen, M."],
        "year": 1995,
        "abstract": ABSTRACT,
    }
    base.update(fields)
    return Record(**base)


def links_of(*records: Record, **kwargs: Any) -> list[DuplicateLink[int]]:
    return find_duplicates(enumerate(records), **kwargs)


def pairs_of(links: list[DuplicateLink[int]]) -> set[tuple[int, int]]:
    return {(link.a, link.b) for link in links}


def load(path: Path, **override: Any) -> list[Record]:
    with path.open(encoding="utf-8") as f:
        return [Record(**{**json.loads(line), **override}) for line in f if line.strip()]


def grouped_pairs(n: int, links: list[DuplicateLink[int]]) -> set[tuple[int, int]]:
    return {p for g in group_duplicates(range(n), links) for p in combinations(g, 2)}


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Effects of X: a RANDOMISED trial.", "effects of x a randomised trial"),
        ("Effects  of  X -- a randomised trial", "effects of x a randomised trial"),
        ("Effects of <i>E. coli</i> &amp; X", "effects of e coli and x"),
        ("Hypertension &amp;amp; diabetes", "hypertension and diabetes"),
        ("Effect of &beta;-blockers on &lt;i&gt;HR&lt;/i&gt;", "effect of beta blockers on hr"),
        ("β-Blockers and α2-agonists", "beta blockers and alpha 2 agonists"),
        ("Müller–Lyer illusion in naïve subjects", "muller lyer illusion in naive subjects"),
        ("[Effect of nifedipine on preterm labour].", "effect of nifedipine on preterm labour"),
        ("Nifedipine in pregnancy [Article in German]", "nifedipine in pregnancy"),
        ("Nifedipine in pregnancy. [see comments]", "nifedipine in pregnancy"),
        ("Truncated title...", "truncated title"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_title(raw: str | None, expected: str) -> None:
    assert normalize_title(raw) == expected


def test_normalize_title_keeps_inner_brackets() -> None:
    assert normalize_title("Study [part 1] of nifedipine") == "study part 1 of nifedipine"


@pytest.mark.parametrize(
    ("author", "surname"),
    [
        ("P Nazzaro", "nazzaro"),
        ("P. Nazzaro", "nazzaro"),
        ("Nazzaro, P.", "nazzaro"),
        ("Nazzaro P", "nazzaro"),
        ("Nazzaro PM", "nazzaro"),
        ("Virginia I Douglas", "douglas"),
        ("T Le Chevalier", "lechevalier"),
        ("Le Chevalier T", "lechevalier"),
        ("Le Chevalier, Thierry", "lechevalier"),
        ("Müller MJ", "muller"),
        ("Tan, L.-B.", "tan"),
    ],
)
def test_first_author_surname(author: str, surname: str) -> None:
    assert first_author_surname([author, "Someone Else"]) == surname


def test_first_author_surname_empty() -> None:
    assert first_author_surname([]) is None
    assert first_author_surname(["", "  "]) is None


def test_is_preprint_doi() -> None:
    assert is_preprint_doi("10.1101/2020.03.01.20029876")
    assert is_preprint_doi("10.21203/rs.3.rs-12345/v2")
    assert not is_preprint_doi("10.1056/nejmoa2001017")
    assert not is_preprint_doi(None)


# --------------------------------------------------------------------------------------------
# Identifier rules
# --------------------------------------------------------------------------------------------


def test_pmid_rule_links_despite_different_titles() -> None:
    a = rec(pmid="123", title="Original English title of the report")
    b = rec(pmid="123", title="[Titre traduit en francais]", authors=[], abstract=None)
    assert links_of(a, b) == [DuplicateLink(0, 1, "pmid", 1.0)]


def test_pmcid_rule() -> None:
    a = rec(pmcid="PMC123", title="One title about something")
    b = rec(pmcid="pmc123", title="A completely different one", year=2010)
    assert [link.rule for link in links_of(a, b)] == ["pmcid"]


def test_doi_rule_and_prefixes_normalised() -> None:
    a = rec(doi="https://doi.org/10.1000/ABC.123")
    b = rec(doi="doi:10.1000/abc.123", title=TITLE.upper(), year=1996)
    assert [link.rule for link in links_of(a, b)] == ["doi"]


def test_doi_shared_by_different_titles_is_not_a_duplicate() -> None:
    # Conference supplements give hundreds of abstracts one DOI.
    supplement = "10.1000/suppl.2019.1"
    a = rec(doi=supplement, title="Efficacy of drug A in asthma: a pilot study", abstract=None)
    b = rec(doi=supplement, title="Quality of life after knee replacement surgery", abstract=None)
    assert links_of(a, b) == []


def test_pmid_takes_precedence_over_doi() -> None:
    a = rec(pmid="1", doi="10.1000/x")
    b = rec(pmid="1", doi="10.1000/x")
    assert [link.rule for link in links_of(a, b)] == ["pmid"]


def test_nct_rule_links_registrations_only() -> None:
    reg1 = Record(record_type="registration", nct_ids=["NCT01234567"], title="Drug A trial")
    reg2 = Record(record_type="registration", nct_ids=["NCT01234567"], title="Study of drug A")
    art1 = rec(nct_ids=["NCT01234567"], title="Results of the drug A trial in adults")
    art2 = rec(nct_ids=["NCT01234567"], title="Secondary outcomes of the drug A trial", year=1997)
    links = links_of(reg1, reg2, art1, art2)
    assert pairs_of(links) == {(0, 1)}
    assert links[0].rule == "nct"


def test_registration_never_duplicates_an_article() -> None:
    reg = Record(record_type="registration", nct_ids=["NCT01234567"], title=TITLE, year=1995)
    art = rec()
    assert links_of(reg, art) == []
    assert links_of(reg, rec(nct_ids=["NCT01234567"])) == []


def test_registrations_with_different_ncts_are_not_duplicates() -> None:
    a = Record(record_type="registration", nct_ids=["NCT01234567"], title=TITLE)
    b = Record(record_type="registration", nct_ids=["NCT07654321"], title=TITLE)
    c = Record(record_type="registration", title=TITLE + ".")
    links = links_of(a, b, c)
    assert (0, 1) not in grouped_pairs(3, links)
    assert len(links) == 1  # c joins one of them, not both


# --------------------------------------------------------------------------------------------
# Strong negatives
# --------------------------------------------------------------------------------------------


def test_different_pmids_are_never_duplicates() -> None:
    assert links_of(rec(pmid="1"), rec(pmid="2")) == []


def test_different_pmcids_are_never_duplicates() -> None:
    assert links_of(rec(pmcid="PMC1"), rec(pmcid="PMC2")) == []


def test_different_journal_dois_are_never_duplicates() -> None:
    assert links_of(rec(doi="10.1000/a"), rec(doi="10.1000/b")) == []


def test_preprint_and_journal_doi_can_be_duplicates() -> None:
    preprint = rec(doi="10.1101/2020.01.01.123456", year=1994, authors=["K W Hansen"])
    journal = rec(doi="10.1000/journal.1")
    links = links_of(preprint, journal)
    assert [(link.rule, link.a, link.b) for link in links] == [("fuzzy", 0, 1)]


def test_two_different_preprint_dois_are_not_duplicates() -> None:
    assert links_of(rec(doi="10.1101/2020.1"), rec(doi="10.1101/2020.2")) == []


def test_preprint_versions_share_a_doi() -> None:
    a = rec(doi="10.21203/rs.3.rs-12345/v1")
    # The revised version has a reworded title and another year: only the DOI joins them.
    b = rec(
        doi="10.21203/rs.3.rs-12345/v2",
        title="Low-dose enalapril and renal function in type 1 diabetes",
        year=1997,
    )
    assert [link.rule for link in links_of(a, b)] == ["doi"]


def test_chain_through_an_unidentified_record_cannot_join_two_pmids() -> None:
    a = rec(pmid="1")
    b = rec(abstract=None)  # fuzzy-matches both a and c
    c = rec(pmid="2")
    links = links_of(a, b, c)
    assert len(links) == 1
    groups = group_duplicates(range(3), links)
    assert groups in ([[0, 1]], [[1, 2]])


def test_year_gap_of_two_is_not_a_duplicate_but_one_is() -> None:
    assert links_of(rec(), rec(year=1997)) == []
    assert pairs_of(links_of(rec(), rec(year=1996))) == {(0, 1)}


def test_different_first_author_without_abstract_is_not_a_duplicate() -> None:
    # Real case: a journal-club comment reuses the commented article's title.
    a = rec(authors=["D N Papatsonis"])
    b = rec(authors=["R B Lewan"], abstract=None)
    assert links_of(a, b) == []


@pytest.mark.parametrize(
    ("title_a", "title_b"),
    [
        (
            "Drug A in advanced lung cancer: a phase II randomised trial",
            "Drug A in advanced lung cancer: a phase III randomised trial",
        ),
        (
            "Long-term outcomes of drug A in heart failure: 1-year results of the B trial",
            "Long-term outcomes of drug A in heart failure: 2-year results of the B trial",
        ),
        (
            "Steady-state pharmacokinetics of modafinil given alone or with methylphenidate",
            "Steady-state pharmacokinetics of modafinil given alone or with dextroamphetamine",
        ),
    ],
)
def test_companion_titles_are_not_duplicates(title_a: str, title_b: str) -> None:
    assert links_of(rec(title=title_a, abstract=None), rec(title=title_b, abstract=None)) == []


@pytest.mark.parametrize(
    "notice",
    [
        "Correction: " + TITLE,
        "Erratum to: " + TITLE,
        "Comment on: " + TITLE,
        "Re: " + TITLE,
        TITLE + ". Author reply",
        "Retraction notice to: " + TITLE,
    ],
)
def test_notice_is_not_a_duplicate_of_its_article(notice: str) -> None:
    assert links_of(rec(), rec(title=notice, abstract=None)) == []


def test_correction_of_is_an_ordinary_title() -> None:
    title = "Correction of hyponatraemia with tolvaptan in chronic heart failure patients"
    assert pairs_of(links_of(rec(title=title), rec(title=title.upper()))) == {(0, 1)}


def test_two_copies_of_a_specific_notice_link() -> None:
    title = "Erratum: " + TITLE
    assert pairs_of(links_of(rec(title=title), rec(title=title + "."))) == {(0, 1)}


def test_generic_titles_need_corroboration() -> None:
    bare: dict[str, Any] = {"abstract": None, "authors": []}
    assert links_of(rec(title="Erratum", **bare), rec(title="Erratum", **bare)) == []
    assert links_of(rec(title="Heart failure", **bare), rec(title="Heart failure", **bare)) == []
    # Same generic title with the same abstract, year and author: the same record.
    assert pairs_of(links_of(rec(title="Heart failure"), rec(title="Heart failure."))) == {(0, 1)}


def test_different_pages_in_the_same_volume_are_not_duplicates() -> None:
    a = rec(journal="J Hypertens", volume="12", pages="100-105", abstract=None)
    b = rec(journal="J Hypertens", volume="13", pages="200-205", abstract=None)
    assert links_of(a, b) == []


def test_different_abstracts_are_evidence_against() -> None:
    other = (
        "In 500 women with chronic pelvic pain we compared acupuncture with sham acupuncture. " * 2
    )
    a = rec(title="Effects of drug A on blood pressure and heart rate in adults", authors=[])
    b = rec(title="Effects of drug A on blood pressure and heart-rate in adults", authors=[])
    assert pairs_of(links_of(a, b)) == {(0, 1)}
    b2 = b.model_copy(update={"abstract": other, "year": 1996})
    assert links_of(a, b2) == []


# --------------------------------------------------------------------------------------------
# Fuzzy positives
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        {"title": TITLE.upper()},
        {"title": TITLE.replace("-", " ") + "."},
        {
            "title": "<p>Effect of low-dose <i>enalapril</i> on renal function</p> in normotensive "
            "type 1 diabetic patients"
        },
        {"title": TITLE.replace("renal", "rneal")},  # typo
        {"title": TITLE[:60].rsplit(" ", 1)[0] + "..."},  # truncated
        {"year": 1996},
        {"authors": ["K W Hansen", "M Pedersen"]},
        {"abstract": None},
        {"title": TITLE.lower(), "year": 1994, "authors": ["Hansen KW"], "abstract": None},
    ],
)
def test_fuzzy_variants_link(variant: dict[str, Any]) -> None:
    links = links_of(rec(pmid="111"), rec(**variant))
    assert [(link.a, link.b, link.rule) for link in links] == [(0, 1, "fuzzy")]
    assert DEFAULT_THRESHOLD <= links[0].score <= 1.0


def test_dropped_subtitle_links() -> None:
    full = "Olanzapine versus risperidone in first-episode schizophrenia: a randomised trial"
    assert pairs_of(links_of(rec(title=full), rec(title=full.split(":")[0]))) == {(0, 1)}


def test_exact_match_beats_truncated_match() -> None:
    # Two different papers (different PMIDs); the copy's title equals the short one.
    short = "The Hypertension in the Very Elderly Trial (HYVET)."
    long = short + " Rationale, methodology and comparison with previous trials."
    links = links_of(rec(pmid="1", title=long), rec(pmid="2", title=short), rec(title=short))
    assert pairs_of(links) == {(1, 2)}


def test_threshold_is_validated() -> None:
    with pytest.raises(ValueError):
        links_of(rec(), threshold=0.0)
    with pytest.raises(ValueError):
        links_of(rec(), threshold=1.5)


def test_higher_threshold_links_less() -> None:
    a, b = rec(), rec(title=TITLE.replace("renal", "rneal"), abstract=None, year=1996)
    links = links_of(a, b, threshold=0.9)
    assert len(links) == 1
    assert 0.9 <= links[0].score < 1.0
    assert links_of(a, b, threshold=1.0) == []


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate key"):
        find_duplicates([(1, rec()), (1, rec())])


def test_string_keys_and_ordering() -> None:
    links = find_duplicates([("z", rec(pmid="5")), ("a", rec(pmid="5"))])
    assert links == [DuplicateLink("a", "z", "pmid", 1.0)]


def test_empty_and_untitled_input() -> None:
    assert find_duplicates([]) == []
    assert links_of(Record(), Record(), Record(title="")) == []


# --------------------------------------------------------------------------------------------
# blocked
# --------------------------------------------------------------------------------------------


def test_blocked_pair_is_not_linked() -> None:
    assert links_of(rec(pmid="1"), rec(pmid="1"), blocked=[frozenset({0, 1})]) == []
    assert links_of(rec(), rec(), blocked=[frozenset({0, 1})]) == []


def test_blocked_pair_is_not_rejoined_through_a_third_record() -> None:
    # A reviewer split {0, 1, 2} into {0, 1} and {2}: the project passes both separated pairs.
    records = [rec(), rec(), rec()]
    blocked = [frozenset({0, 2}), frozenset({1, 2})]
    links = links_of(*records, blocked=blocked)
    assert group_duplicates(range(3), links) == [[0, 1]]
    # With only one separated pair given, 2 may still join 1, but never 0.
    links = links_of(*records, blocked=[frozenset({0, 2})])
    for group in group_duplicates(range(3), links):
        assert not {0, 2} <= set(group)


def test_blocked_with_unknown_keys_is_ignored() -> None:
    assert pairs_of(links_of(rec(), rec(), blocked=[frozenset({7, 8}), frozenset({0})])) == {(0, 1)}


# --------------------------------------------------------------------------------------------
# Grouping and the primary record
# --------------------------------------------------------------------------------------------


def test_group_duplicates_is_transitive_and_sorted() -> None:
    links = [
        DuplicateLink(5, 3, "pmid", 1.0),
        DuplicateLink(3, 9, "fuzzy", 0.95),
        DuplicateLink(2, 1, "doi", 1.0),
    ]
    assert group_duplicates([9, 1, 2, 3, 4, 5], links) == [[1, 2], [3, 5, 9]]
    assert group_duplicates([1, 2], []) == []


def test_group_duplicates_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="not in keys"):
        group_duplicates([1], [DuplicateLink(1, 2, "pmid", 1.0)])


def test_choose_primary_prefers_the_most_complete_record() -> None:
    bare = Record(title=TITLE)
    with_abstract = Record(title=TITLE, abstract=ABSTRACT, authors=["A"])
    with_pmid = Record(title=TITLE, pmid="1")
    preprint = Record(title=TITLE, doi="10.1101/2020.1", abstract=ABSTRACT * 2, authors=["A"])
    journal = Record(title=TITLE, doi="10.1000/j.1")
    assert choose_primary({1: bare, 2: with_abstract}) == 2
    assert choose_primary({1: with_abstract, 2: with_pmid}) == 2
    assert choose_primary({1: preprint, 2: journal}) == 2
    assert choose_primary({7: bare, 3: bare.model_copy()}) == 3  # tie: smallest key
    with pytest.raises(ValueError):
        choose_primary({})


# --------------------------------------------------------------------------------------------
# Blocking
# --------------------------------------------------------------------------------------------


def _distractors(n: int, seed: int) -> list[Record]:
    """Titles that start like TITLE (so they sort between it and its variants) and share some of
    its common words, with the rest drawn from a larger vocabulary."""
    rng = random.Random(seed)
    shared = ["renal", "function", "type", "patients", "in", "on", "of"]
    vocab = shared + [
        f"{a}{b}"
        for a in ("cardio", "hepato", "neuro", "osteo")
        for b in ("logy", "toxicity", "protection", "pathy", "genesis", "metry")
    ]
    return [
        Record(title="Effect of low-dose " + " ".join(rng.choice(vocab) for _ in range(7)))
        for _ in range(n)
    ]


@pytest.mark.parametrize(
    "variant",
    [
        TITLE[: int(len(TITLE) * 0.6)].rsplit(" ", 1)[0],  # truncated to 60 %
        TITLE.replace(" ", "-").upper(),  # re-punctuated
        "The " + TITLE.replace("diabetic", "diabetik"),  # changed start and a typo
        "Efect " + TITLE.split(" ", 1)[1][:50],  # typo at the start and truncated
    ],
)
def test_blocking_brings_variants_together_among_distractors(variant: str) -> None:
    records = [*_distractors(300, 1), rec(title=TITLE), rec(title=variant)]
    n = len(records)
    assert (n - 2, n - 1) in candidate_pairs(records)


def test_blocking_finds_a_changed_start_when_every_word_is_common() -> None:
    # Distractors made of TITLE's own words: no rare word to meet on, and a changed first word
    # moves the variant away in title order; only the title read backwards brings them together.
    rng = random.Random(5)
    words = TITLE.split()
    distractors = [Record(title=" ".join(rng.sample(words, len(words)))) for _ in range(300)]
    records = [*distractors, rec(title=TITLE), rec(title="Efect" + TITLE[6:])]
    n = len(records)
    assert (n - 2, n - 1) in candidate_pairs(records)


def test_blocking_is_much_smaller_than_all_pairs() -> None:
    records = _distractors(400, 2)
    assert len(candidate_pairs(records)) < 400 * 399 / 2 / 10


# --------------------------------------------------------------------------------------------
# Real records (vendored fixtures)
# --------------------------------------------------------------------------------------------


def _truth_by_pmid(path: Path) -> tuple[list[dict[str, Any]], set[tuple[int, int]]]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    by: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by[row["pmid"]].append(i)
    return rows, {p for m in by.values() for p in combinations(m, 2)}


def test_cohen_crossfile_duplicates_by_pmid(fixtures: Path) -> None:
    path = fixtures / "dedup" / "cohen_crossfile.jsonl"
    _, truth = _truth_by_pmid(path)
    records = load(path)
    links = links_of(*records)
    assert {link.rule for link in links} == {"pmid"}
    assert grouped_pairs(len(records), links) == truth


def test_cohen_crossfile_duplicates_without_pmids(fixtures: Path) -> None:
    """Real cross-file duplicates found by fuzzy matching alone, and real companion papers
    (same authors and year, titles a word or two apart, different PMIDs) kept apart."""
    path = fixtures / "dedup" / "cohen_crossfile.jsonl"
    rows, truth = _truth_by_pmid(path)
    records = load(path, pmid=None)
    predicted = grouped_pairs(len(records), links_of(*records))
    findable = {(a, b) for a, b in truth if rows[a]["title"] and rows[b]["title"]}
    assert len(findable) >= 50
    assert predicted <= truth  # no false positives on these records
    assert len(predicted & findable) / len(findable) >= 0.95


def test_haystack_same_title_different_pmid_are_kept_apart(fixtures: Path) -> None:
    records = load(fixtures / "dedup" / "haystack_sample.jsonl")
    titles: dict[str, int] = defaultdict(int)
    for r in records:
        titles[normalize_title(r.title)] += 1
    assert sum(v > 1 for v in titles.values()) >= 10  # the fixture holds such twins
    assert links_of(*records) == []


def test_haystack_injected_variants_are_found(fixtures: Path) -> None:
    base = load(fixtures / "dedup" / "haystack_sample.jsonl")
    seen: dict[str, int] = defaultdict(int)
    for r in base:
        seen[normalize_title(r.title)] += 1
    rng = random.Random(3)
    copies: list[Record] = []
    truth: set[tuple[int, int]] = set()
    for i, r in enumerate(base):
        title = r.title or ""
        # Records with a same-titled twin (another PMID) are left out: a copy of one of them
        # without its PMID is as close to the twin as to its original.
        if len(title.split()) < 6 or seen[normalize_title(title)] > 1:
            continue
        change = rng.choice(["upper", "truncate", "typo", "year"])
        update: dict[str, Any] = {"pmid": None, "pmcid": None}
        if change == "upper":
            update["title"] = title.upper()
        elif change == "truncate":
            update["title"] = title[: int(len(title) * 0.75)].rsplit(" ", 1)[0] + "..."
        elif change == "typo":
            k = len(title) // 2
            update["title"] = title[:k] + title[k + 1 :]
        else:
            update["year"] = (r.year or 2000) + 1
        copies.append(r.model_copy(update=update))
        truth.add((i, len(base) + len(copies) - 1))
    records = base + copies
    predicted = grouped_pairs(len(records), links_of(*records))
    assert len(truth) >= 50
    assert predicted <= truth
    assert len(predicted) / len(truth) >= 0.95


def test_cohen_full_set(shared_data: Path) -> None:
    """All 9,510 Cohen rows: identifier grouping is exact; fuzzy alone stays precise."""
    rows: list[dict[str, str]] = []
    for path in sorted((shared_data / "screening" / "cohen2006").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            rows.extend(csv.DictReader(f))
    by: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by[row["pubmedID"]].append(i)
    truth = {p for m in by.values() for p in combinations(m, 2)}

    def record(row: dict[str, str], with_pmid: bool) -> Record:
        return Record(
            pmid=row["pubmedID"] if with_pmid else None,
            title=row["title"] or None,
            abstract=row["abstract"] or None,
            authors=[a.strip() for a in row["authors"].split(";") if a.strip()],
            year=int(float(row["year"])) if row["year"] else None,
        )

    with_ids = [record(r, True) for r in rows]
    assert grouped_pairs(len(rows), links_of(*with_ids)) == truth
    without = [record(r, False) for r in rows]
    predicted = grouped_pairs(len(rows), links_of(*without))
    tp = len(predicted & truth)
    assert tp / len(predicted) >= 0.97
    assert tp / len(truth) >= 0.93


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_WORDS = ["renal", "enalapril", "trial", "of", "in", "blood", "pressure", "children", "the", "x"]
titles = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=9).map(" ".join)
records = st.builds(
    Record,
    title=st.one_of(st.none(), titles),
    pmid=st.one_of(st.none(), st.sampled_from(["1", "2", "3"])),
    doi=st.one_of(st.none(), st.sampled_from(["10.1000/a", "10.1000/b", "10.1101/p"])),
    year=st.one_of(st.none(), st.integers(1998, 2001)),
    authors=st.lists(st.sampled_from(["Smith, J", "J Smith", "Doe J"]), max_size=2),
    abstract=st.one_of(st.none(), st.just(ABSTRACT)),
    record_type=st.sampled_from(["article", "article", "registration"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(records, max_size=12), st.randoms(use_true_random=False))
def test_links_are_well_formed_and_order_independent(
    items: list[Record], rnd: random.Random
) -> None:
    keyed = [(k * 7 % 13 + 100 * k, r) for k, r in enumerate(items)]
    links = find_duplicates(keyed)
    shuffled = list(keyed)
    rnd.shuffle(shuffled)
    assert find_duplicates(shuffled) == links
    for link in links:
        assert link.a < link.b  # never a self-link
        assert link.rule in RULES
        assert 0.0 <= link.score <= 1.0
    by_key = dict(keyed)
    for group in group_duplicates(by_key, links):
        pmids = {by_key[k].pmid for k in group} - {None}
        assert len(pmids) <= 1
        types = {by_key[k].record_type == "registration" for k in group}
        assert len(types) == 1


@settings(max_examples=40, deadline=None)
@given(records, st.integers(2, 4))
def test_identical_records_with_identifiers_always_link(record: Record, copies: int) -> None:
    if not (record.pmid or record.doi or record.pmcid):
        record = record.model_copy(update={"pmid": "42"})
    links = find_duplicates((k, record.model_copy()) for k in range(copies))
    assert group_duplicates(range(copies), links) == [list(range(copies))]


@settings(max_examples=40, deadline=None)
@given(st.lists(records, min_size=2, max_size=8), st.data())
def test_blocked_pairs_never_share_a_group(items: list[Record], data: st.DataObject) -> None:
    n = len(items)
    all_pairs = list(combinations(range(n), 2))
    blocked = data.draw(st.lists(st.sampled_from(all_pairs), max_size=4))
    links = find_duplicates(enumerate(items), blocked=[frozenset(p) for p in blocked])
    for group in group_duplicates(range(n), links):
        for a, b in blocked:
            assert not {a, b} <= set(group)
