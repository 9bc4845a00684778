"""The PubMed query language: parsing, the AST, renderers and the splitter.

Real queries come from the SIGIR 2017 collection of Cochrane search strategies: a vendored sample
in ``tests/fixtures/search/pubmed_queries.txt``, and all of them from ``shared_data`` when present.
FTS5 renderings are executed by SQLite and compared with a small reference evaluator written
here; the same evaluator checks that split queries return exactly the original's matches.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leads.errors import QueryError
from leads.search import (
    DATE_FIELDS,
    FIELD_ALIASES,
    FIELDS,
    And,
    DateRange,
    Node,
    Not,
    Or,
    Ref,
    Term,
    can_fts5,
    iter_leaves,
    parse,
    parse_strategy,
    resolve_refs,
    split_query,
    strategy_lines,
    to_ctgov,
    to_fts5,
    to_pubmed,
)


def t(text: str, field: str | None = None, **flags: object) -> Term:
    return Term(text, field, **flags)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Real queries


def _fixture_lines(fixtures: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in (fixtures / "search" / "pubmed_queries.txt").read_text("utf-8").splitlines():
        if line.startswith("--") or not line.strip():
            continue
        source, status, query = line.split("\t")
        rows.append((source, status, query))
    return rows


def test_vendored_real_queries_parse_and_round_trip(fixtures: Path) -> None:
    rows = _fixture_lines(fixtures)
    assert len([row for row in rows if row[1] == "ok"]) >= 30
    for source, status, query in rows:
        if status == "ok":
            node = parse(query)
            assert parse(to_pubmed(node)) == node, source
            assert to_pubmed(parse(to_pubmed(node))) == to_pubmed(node), source
        else:
            with pytest.raises(QueryError) as caught:
                parse(query)
            assert caught.value.position == int(status.split()[1]), source


def test_real_queries_read_as_pubmed_reads_them(fixtures: Path) -> None:
    rows = {source: query for source, _, query in _fixture_lines(fixtures)}
    # a field tag applies to the term it follows only; left to right
    assert parse(rows["82/3"]) == Or(
        (
            t("dependen", truncated=True),
            t("disorder", truncated=True),
            t("drink", truncated=True),
            t("misuse"),
            t("abuse", truncated=True),
            t("consumption", "tiab"),
        )
    )
    assert parse(rows["27/6"]) == t("Water", "mh", phrase=True, noexp=True)
    assert parse(rows["103/1"]).items[0].items[-1] == t(  # type: ignore[union-attr]
        "Delivery, Obstetric/methods", "mh", phrase=True
    )
    assert parse(rows["36/7"]) == And((Ref(6), DateRange("2008/03/01", "3000", "crdt")))
    assert parse(rows["58/7"]).items[-1] == DateRange("2009/06/01", "2012/11", "dp")  # type: ignore[union-attr]
    # typographic quotes and a space inside the subheading, as pasted from a word processor
    assert parse(rows["112/3"]).items[0] == t("LABYRINTH DISEASES", "mh", phrase=True)  # type: ignore[union-attr]
    assert t("Vertigo /rehabilitation", "mh", phrase=True).subheading == "rehabilitation"
    assert parse(rows["128/15"]) == t("Motivation", "mh", truncated=True, noexp=True)
    assert parse(rows["142/4"]) == Not(Not(Ref(3), t("medline", "sb")), t("pmcbook"))
    assert parse(rows["10/8"]) == Or(
        (t("vein thromb", "tiab", truncated=True), t("venous thromb", "tiab", truncated=True))
    )


PUBMED_SYNTAX_FAILURES = {
    # the published strategies are wrong here; PubMed itself would reject or misread them
    (58, 4),  # one ')' too many
    (67, 12),  # a '(' never closed
    (112, 6),  # one ')' too many
    (128, 7),  # *amphetamine: leading wildcard
    (128, 18),  # a '(' never closed
    (135, 7),  # monitor$: Ovid truncation
    (135, 11),  # trial$: Ovid truncation
    (172, 1),  # an?esth*: '?' wildcard
}
STRATEGY_FAILURES = {27, 58, 67, 112, 128, 135, 172}  # 27: search #18 includes #18 itself


def _is_pubmed_syntax(text: str) -> bool:
    """A PubMed field tag outside quotes (Ovid strategies write [publication type] inside)."""
    unquoted = re.sub(r"[\"“][^\"“”]*[\"”]", " ", text)
    return any(
        re.sub(r"\s+", "", tag.lower()).split(":")[0] in FIELD_ALIASES
        for tag in re.findall(r"\[([^\[\]]*)\]", unquoted)
    )


@pytest.mark.shared
def test_all_sigir2017_pubmed_queries(shared_data: Path) -> None:
    queries = json.loads(
        (shared_data / "search" / "sigir2017" / "queries_unannotated.json").read_text("utf-8")
    )
    pubmed = [q for q in queries if _is_pubmed_syntax(q["query"])]
    assert len(pubmed) == 24
    failed_lines, failed_strategies, lines = set(), set(), 0
    for query in pubmed:
        for number, text in strategy_lines(query["query"]):
            lines += 1
            try:
                node = parse(text)
            except QueryError:
                failed_lines.add((query["id"], number))
                continue
            assert parse(to_pubmed(node)) == node
        try:
            parse_strategy(query["query"])
        except QueryError:
            failed_strategies.add(query["id"])
    assert failed_lines == PUBMED_SYNTAX_FAILURES
    assert failed_strategies == STRATEGY_FAILURES
    assert lines == 225  # 217 of them parse: 96.4%


# --------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a OR b AND c", And((Or((t("a"), t("b"))), t("c")))),
        ("a AND b OR c", Or((And((t("a"), t("b"))), t("c")))),
        ("a NOT b OR c", Or((Not(t("a"), t("b")), t("c")))),
        ("a OR b NOT c", Not(Or((t("a"), t("b"))), t("c"))),
        ("a NOT b NOT c", Not(Not(t("a"), t("b")), t("c"))),
        ("a AND (b OR c)", And((t("a"), Or((t("b"), t("c")))))),
        ("a AND b AND c", And((t("a"), t("b"), t("c")))),
        ("(a AND b) AND (c AND d)", And((t("a"), t("b"), t("c"), t("d")))),
        ("a or b and c", And((Or((t("a"), t("b"))), t("c")))),
        # implicit AND between complete units
        ("a[ti] b[ti]", And((t("a", "ti"), t("b", "ti")))),
        ('"x y" z', And((t("x y", phrase=True), t("z")))),
        ("a (b OR c)", And((t("a"), Or((t("b"), t("c")))))),
        ("a OR b[ti] c", And((Or((t("a"), t("b", "ti"))), t("c")))),
    ],
)
def test_left_to_right(query: str, expected: Node) -> None:
    assert parse(query) == expected


def test_adjacent_bare_words_are_one_term() -> None:
    assert parse("heart  attack") == t("heart attack")
    assert parse("low birth weight[tiab]") == t("low birth weight", "tiab")
    assert parse("android OR notable") == Or((t("android"), t("notable")))
    assert parse("not-for-profit") == t("not-for-profit")
    assert parse('"and"') == t("and", phrase=True)


@pytest.mark.parametrize(
    ("tag", "field", "noexp", "proximity"),
    [
        ("[tiab]", "tiab", False, None),
        ("[Title/Abstract]", "tiab", False, None),
        ("[TI]", "ti", False, None),
        ("[title]", "ti", False, None),
        ("[abstract]", "ab", False, None),
        ("[MeSH Terms]", "mh", False, None),
        ("[mesh]", "mh", False, None),
        ("[mh:noexp]", "mh", True, None),
        ("[MeSH:NoExp]", "mh", True, None),
        ("[mesh: noexp]", "mh", True, None),
        ("[mesh:no exp]", "mh", True, None),
        ("[majr]", "majr", False, None),
        ("[MeSH Major Topic:noexp]", "majr", True, None),
        ("[pt]", "pt", False, None),
        ("[Publication Type]", "pt", False, None),
        ("[ptyp]", "pt", False, None),
        ("[tw]", "tw", False, None),
        ("[Text Word]", "tw", False, None),
        ("[all]", "all", False, None),
        ("[All Fields]", "all", False, None),
        ("[au]", "au", False, None),
        ("[author]", "au", False, None),
        ("[la]", "la", False, None),
        ("[language]", "la", False, None),
        ("[sb]", "sb", False, None),
        ("[subset]", "sb", False, None),
        ("[sh]", "sh", False, None),
        ("[MeSH Subheading]", "sh", False, None),
        ("[nm]", "nm", False, None),
        ("[supplementary concept]", "nm", False, None),
        ("[ot]", "ot", False, None),
        ("[pmid]", "pmid", False, None),
        ("[uid]", "pmid", False, None),
        ("[doi]", "doi", False, None),
    ],
)
def test_field_tags(tag: str, field: str, noexp: bool, proximity: int | None) -> None:
    node = parse(f"word {tag}")
    assert node == Term("word", field, noexp=noexp, proximity=proximity)


def test_field_tag_table_is_complete() -> None:
    assert set(FIELD_ALIASES.values()) == FIELDS | DATE_FIELDS
    assert all(FIELD_ALIASES[name] == name for name in FIELDS | DATE_FIELDS)


def test_proximity_truncation_phrases_and_mesh() -> None:
    assert parse('"hip pain"[tiab:~3]') == t("hip pain", "tiab", phrase=True, proximity=3)
    assert parse('"hip pain"[Title/Abstract:~0]').proximity == 0  # type: ignore[union-attr]
    assert parse("random*") == t("random", truncated=True)
    assert parse('"ear mould*"') == t("ear mould", phrase=True, truncated=True)
    mesh = parse('"Estrogens/therapeutic use"[mh]')
    assert isinstance(mesh, Term)
    assert (mesh.heading, mesh.subheading) == ("Estrogens", "therapeutic use")
    assert t("and/or", "tiab", phrase=True).subheading is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("2010:2020[dp]", DateRange("2010", "2020", "dp")),
        ("2010 : 2020 [pdat]", DateRange("2010", "2020", "dp")),
        ('"2010/01/01"[dp] : "2020/12/31"[dp]', DateRange("2010/01/01", "2020/12/31", "dp")),
        ("2010/1/1:2020/12[Publication Date]", DateRange("2010/01/01", "2020/12", "dp")),
        ("2010-01-01:2010-02-28[edat]", DateRange("2010/01/01", "2010/02/28", "edat")),
        ("2015[dp]", DateRange("2015", "2015", "dp")),
        (
            '"2008/03/01"[Date - Entrez] : "3000"[Date - Entrez]',
            DateRange("2008/03/01", "3000", "edat"),
        ),
    ],
)
def test_date_ranges(query: str, expected: DateRange) -> None:
    assert parse(query) == expected


def test_date_range_bounds() -> None:
    dates = DateRange("2012/02", "2012/11")
    assert (dates.first_day().isoformat(), dates.last_day().isoformat()) == (
        "2012-02-01",
        "2012-11-30",
    )
    assert DateRange("2012", "2012/02").last_day().isoformat() == "2012-02-29"


@pytest.mark.parametrize(
    ("query", "position", "fragment"),
    [
        ("a OR (b AND c", 5, "unbalanced '('"),
        ("(a OR (b) AND c", 0, "unbalanced '('"),
        ("a OR b)", 6, "unbalanced ')'"),
        ("a AND", 2, "needs a search term after it"),
        ("a AND (b OR)", 9, "needs a search term after it"),
        ("OR a", 0, "needs a search term before it"),
        ("a AND OR b", 6, "needs a search term before it"),
        ("(NOT a)", 1, "needs a search term before it"),
        ('a OR "heart attack', 5, "unclosed quotation mark"),
        ("a OR “heart attack", 5, "unclosed quotation mark"),
        ("random[tiab", 6, "unclosed '['"),
        ("random]", 6, "']' without"),
        ("random[tiabs]", 6, "unknown field tag [tiabs]"),
        ("a OR b[Date - Nonsense]", 6, "unknown field tag"),
        ("a[mh:exp]", 1, "unknown field tag modifier"),
        ("a[tiab:noexp]", 0, ":noexp applies only to MeSH"),
        ('"hip pain"[mh:~3]', 0, "proximity"),
        ("hip pain[tiab:~3]", 0, "quoted phrase"),
        ("[tiab]", 0, "must follow a search term"),
        ("a[ti][ab]", 5, "only one field tag"),
        ("a ()", 2, "empty parentheses"),
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("*amphetamine", 0, "truncation '*'"),
        ("a * b", 2, "truncation '*'"),
        ("human immun* deficiency", 11, "inside a multi-word term"),
        ('"ran*dom"', 4, "end of a phrase"),
        ("monitor$", 7, "Ovid"),
        ("an?esthesia", 2, "'?'"),
        ("# 3", 0, "search number"),
        ("a : b", 2, "date range"),
        ("2010:2020", 4, "date range"),
        ("2010:2020[tiab]", 9, "date field"),
        ("2010[dp]:2020[edat]", 8, "different field tags"),
        ("2021:2020[dp]", 0, "ends before it starts"),
        ("2010:2020/13[dp]", 5, "not a valid date"),
        ("last year[dp]", 0, "not a date"),
        ("2010*[dp]", 0, "truncated"),
        ('""', 0, "empty phrase"),
        ("#0", 0, "#1 or higher"),
        ("a" + "(" * 150 + "b" + ")" * 150, 101, "nested too deeply"),
    ],
)
def test_syntax_errors_have_positions(query: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.position == position
    assert fragment in str(caught.value)
    assert caught.value.query == query


def test_error_message_points_at_the_fault() -> None:
    with pytest.raises(QueryError) as caught:
        parse("cancer[tiab] AND (aspirin[foo] OR heparin)")
    assert str(caught.value).splitlines()[-1] == "  " + " " * 25 + "^"


def test_nodes_validate_and_normalize() -> None:
    assert Term("  heart \n attack ") == Term("heart attack")
    assert And((And((t("a"), t("b"))), t("c"))) == And((t("a"), t("b"), t("c")))
    assert Or([t("a"), Or([t("b"), t("c")])]).items == (t("a"), t("b"), t("c"))
    for bad in (
        lambda: Term(""),
        lambda: Term("a", "nonsense"),
        lambda: Term("2010", "dp"),
        lambda: Term("a(b"),
        lambda: Term("AND"),
        lambda: Term('say "x"', phrase=True),
        lambda: Term("a b", "tiab", phrase=True, proximity=-1),
        lambda: Term("a", "mh", noexp=True, phrase=True, proximity=2),
        lambda: And((t("a"),)),
        lambda: Or((t("a"), "b")),  # type: ignore[arg-type]
        lambda: Not(t("a"), None),  # type: ignore[arg-type]
        lambda: DateRange("2010", "2011", "tiab"),
        lambda: Ref(0),
    ):
        with pytest.raises(QueryError):
            bad()


def test_to_pubmed_is_canonical() -> None:
    query = 'heart attack[Title/Abstract] OR "MI"[MeSH Terms:NoExp] AND aspirin* NOT rats[mh]'
    assert to_pubmed(parse(query)) == (
        '((heart attack[tiab] OR "MI"[mh:noexp]) AND aspirin*) NOT rats[mh]'
    )
    assert to_pubmed(parse('"hip pain"[tiab:~2] AND 2010:2020[dp] AND 2015[dp] OR #3')) == (
        '("hip pain"[tiab:~2] AND 2010:2020[dp] AND 2015[dp]) OR #3'
    )


def test_iter_leaves_in_order() -> None:
    node = parse("(a OR b) AND c NOT (d OR 2010[dp])")
    assert [to_pubmed(leaf) for leaf in iter_leaves(node)] == ["a", "b", "c", "d", "2010[dp]"]


# --------------------------------------------------------------------------------------------
# Search histories


def test_parse_strategy_resolves_references_in_any_order() -> None:
    strategy = """#3\tSearch #1 AND #2 Limits: Publication Date from 2008/08/29 to 2009/06/05
#2\tSearch: aspirin[tiab]
#1\tSearch stroke[mh] OR "cerebrovascular accident"[tiab]
"""
    assert strategy_lines(strategy)[0] == (
        3,
        "(#1 AND #2) AND 2008/08/29:2009/06/05[dp]",
    )
    assert parse_strategy(strategy) == And(
        (
            Or((t("stroke", "mh"), t("cerebrovascular accident", "tiab", phrase=True))),
            t("aspirin", "tiab"),
            DateRange("2008/08/29", "2009/06/05"),
        )
    )


def test_parse_strategy_unnumbered_and_dotted() -> None:
    assert parse_strategy("PubMed:\n\ncancer[tiab]\n\nrats\n#1 NOT #2") == Not(
        t("cancer", "tiab"), t("rats")
    )
    assert parse_strategy("1. cancer [tiab]\n2. aspirin\n3. #1 and #2") == And(
        (t("cancer", "tiab"), t("aspirin"))
    )
    # a line that merely mentions the word search keeps it
    assert strategy_lines("Final search 1 and 2") == [(1, "Final search 1 and 2")]


def test_parse_strategy_errors() -> None:
    with pytest.raises(QueryError, match="refers to itself"):
        parse_strategy("#1 a\n#2 (#1 OR #2)")
    with pytest.raises(QueryError, match="not defined"):
        parse_strategy("#1 a\n#2 #1 AND #7")
    with pytest.raises(QueryError) as caught:
        parse_strategy("#1 a\n#2 (b OR c")
    assert caught.value.query == "(b OR c"
    assert caught.value.position == 0
    assert str(caught.value).startswith("search #2: unbalanced '('")
    with pytest.raises(QueryError, match="no search number"):
        parse_strategy("#1 a\nb")
    with pytest.raises(QueryError, match="empty"):
        parse_strategy("\n \n")


def test_resolve_refs() -> None:
    node = parse("#1 NOT (#2 OR x)")
    assert resolve_refs(node, {1: t("a"), 2: t("b")}) == Not(t("a"), Or((t("b"), t("x"))))
    with pytest.raises(QueryError, match="#2 is not defined"):
        resolve_refs(node, {1: t("a")})


# --------------------------------------------------------------------------------------------
# Property tests: AST -> PubMed -> AST

WORD_CHARS = string.ascii_letters + string.digits + "-',./&+%;!~^@{}<>=|\\éßØ中"
words = st.text(WORD_CHARS, min_size=1, max_size=7).filter(
    lambda w: w.lower() not in {"and", "or", "not"}
)
phrase_words = st.text(WORD_CHARS + "()[]:#$?", min_size=1, max_size=7)


@st.composite
def terms(draw: st.DrawFn) -> Term:
    phrase = draw(st.booleans())
    parts = draw(st.lists(phrase_words if phrase else words, min_size=1, max_size=3))
    field = draw(st.sampled_from([None, *sorted(FIELDS)]))
    truncated = draw(st.booleans())
    noexp = field in ("mh", "majr") and draw(st.booleans())
    proximity = None
    if phrase and field in ("tiab", "ti", "ab") and len(parts) > 1 and not truncated:
        proximity = draw(st.none() | st.integers(0, 30))
    return Term(" ".join(parts), field, phrase, truncated, noexp, proximity)


@st.composite
def date_ranges(draw: st.DrawFn) -> DateRange:
    def fmt(day: object, precision: int) -> str:
        return "/".join(str(day).replace("-", "/").split("/")[:precision])

    first, second = sorted(draw(st.lists(st.dates(), min_size=2, max_size=2)))
    assume(first.year >= 1000)
    return DateRange(
        fmt(first, draw(st.integers(1, 3))),
        fmt(second, draw(st.integers(1, 3))),
        draw(st.sampled_from(sorted(DATE_FIELDS))),
    )


def trees(leaves: st.SearchStrategy[Node], max_leaves: int = 12) -> st.SearchStrategy[Node]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=4).map(lambda xs: And(tuple(xs))),
            st.lists(children, min_size=2, max_size=4).map(lambda xs: Or(tuple(xs))),
            st.tuples(children, children).map(lambda pair: Not(*pair)),
        ),
        max_leaves=max_leaves,
    )


any_leaf = st.one_of(terms(), date_ranges(), st.integers(1, 999).map(Ref))


@given(trees(any_leaf))
@settings(max_examples=300, deadline=None)
def test_round_trip_from_ast(node: Node) -> None:
    text = to_pubmed(node)
    assert parse(text) == node
    assert to_pubmed(parse(text)) == text


@given(st.text(max_size=60))
@settings(max_examples=500, deadline=None)
def test_arbitrary_text_parses_or_raises_query_error(text: str) -> None:
    try:
        node = parse(text)
    except QueryError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
    else:
        assert parse(to_pubmed(node)) == node


TOKENS = [
    "heart", "attack", "rand*", "AND", "OR", "NOT", "and", "(", ")", '"', '"a b"', "“x”",
    "[tiab]", "[mh]", "[Mesh:NoExp]", "[tiab:~2]", "[dp]", "[bogus]", "[", "]", ":", "*",
    "2010", "2020/01", "#3", "#", "$", "?", "a/b", ",", "-", "not-a-word",
]  # fmt: skip


@given(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", " ", "  "])), max_size=14))
@settings(max_examples=800, deadline=None)
def test_token_soup(pieces: list[tuple[str, str]]) -> None:
    text = "".join(token + space for token, space in pieces)
    try:
        node = parse(text)
    except QueryError as error:
        assert error.position is not None and 0 <= error.position <= len(text)
    else:
        rendered = to_pubmed(node)
        assert parse(rendered) == node
        assert to_pubmed(parse(rendered)) == rendered


# --------------------------------------------------------------------------------------------
# A reference evaluator over in-memory documents (title, abstract, year)

VOCABULARY = ["aa", "ab", "abc", "b", "ba", "c"]
COLUMNS = {"tiab": ("title", "abstract"), "ti": ("title",), "ab": ("abstract",)}


def tokens(text: str) -> list[str]:
    return re.findall(r"[0-9a-z]+", text.lower())


def term_matches(term: Term, doc: dict[str, object]) -> bool:
    wanted = tokens(term.text)
    if not wanted:
        return False
    for column in COLUMNS.get(term.field or "tiab", ("title", "abstract")):
        have = tokens(str(doc[column]))
        if term.proximity is not None:  # FTS5 NEAR: tokens between first and last <= N
            places = [[i for i, tok in enumerate(have) if tok == w] for w in wanted]
            if all(places) and any(
                max(choice) - min(choice) - 1 <= term.proximity
                for choice in itertools.product(*places)
            ):
                return True
            continue
        n = len(wanted)
        for start in range(len(have) - n + 1):
            window = have[start : start + n]
            if window[:-1] == wanted[:-1] and (
                window[-1].startswith(wanted[-1]) if term.truncated else window[-1] == wanted[-1]
            ):
                return True
    return False


def evaluate(node: Node, doc: dict[str, object]) -> bool:
    if isinstance(node, Term):
        return term_matches(node, doc)
    if isinstance(node, DateRange):
        return node.first_day().year <= doc["year"] <= node.last_day().year  # type: ignore[operator]
    if isinstance(node, And):
        return all(evaluate(item, doc) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, doc) for item in node.items)
    if isinstance(node, Not):
        return evaluate(node.left, doc) and not evaluate(node.right, doc)
    raise AssertionError(node)


text_of_words = st.lists(st.sampled_from([*VOCABULARY, "x", "aab"]), max_size=6).map(" ".join)
documents = st.lists(
    st.fixed_dictionaries(
        {"title": text_of_words, "abstract": text_of_words, "year": st.integers(2000, 2006)}
    ),
    min_size=1,
    max_size=25,
)


@st.composite
def simple_terms(draw: st.DrawFn) -> Term:
    kind = draw(st.sampled_from(["word", "words", "hyphenated", "phrase", "proximity"]))
    count = 1 if kind == "word" else draw(st.integers(2, 3))
    parts = draw(st.lists(st.sampled_from(VOCABULARY), min_size=count, max_size=count, unique=True))
    field = draw(st.sampled_from([None, "tiab", "ti", "ab"]))
    if kind == "proximity":
        field = draw(st.sampled_from(["tiab", "ti", "ab"]))
        return Term(" ".join(parts), field, phrase=True, proximity=draw(st.integers(0, 3)))
    text = "-".join(parts) if kind == "hyphenated" else " ".join(parts)  # FTS5 splits a-b
    return Term(text, field, phrase=kind == "phrase", truncated=draw(st.booleans()))


# --------------------------------------------------------------------------------------------
# FTS5


def fts_table(docs: list[dict[str, object]]) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE docs USING fts5(title, abstract)")
    connection.executemany(
        "INSERT INTO docs(rowid, title, abstract) VALUES (?, ?, ?)",
        [(i, doc["title"], doc["abstract"]) for i, doc in enumerate(docs)],
    )
    return connection


def fts_search(connection: sqlite3.Connection, expression: str) -> set[int]:
    rows = connection.execute("SELECT rowid FROM docs WHERE docs MATCH ?", (expression,))
    return {row[0] for row in rows}


FTS_COLUMNS = {"tiab": ["title", "abstract"], "ti": "title", "ab": ["abstract"]}


@given(trees(simple_terms(), max_leaves=8), documents, st.booleans())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fts5_matches_reference_evaluator(node: Node, docs: list[dict], untagged: bool) -> None:
    columns: dict = dict(FTS_COLUMNS)
    if untagged:
        columns[None] = ["title", "abstract"]  # otherwise: no column filter, same columns
    connection = fts_table(docs)
    expected = {i for i, doc in enumerate(docs) if evaluate(node, doc)}
    assert fts_search(connection, to_fts5(node, columns)) == expected


def test_fts5_renderings() -> None:
    columns = {"tiab": ["title", "abstract"], "ti": "title", "mh": "mesh", "all": []}
    assert to_fts5(parse("heart attack[tiab] OR random*[ti]"), columns) == (
        '({title abstract} : "heart attack") OR ({title} : "random" *)'
    )
    assert to_fts5(parse('"hip pain"[tiab:~2] NOT (rats[ti] AND mice)'), columns) == (
        '({title abstract} : NEAR("hip" "pain", 2)) NOT (({title} : "rats") AND ("mice"))'
    )
    # FTS5 keywords and special characters are text inside strings
    assert to_fts5(parse('"NOT" OR "NEAR" OR "a:b" OR "{x} ^y -z"'), columns) == (
        '("NOT") OR ("NEAR") OR ("a:b") OR ("{x} ^y -z")'
    )
    assert to_fts5(parse('"Heart Diseases"[mh:noexp]'), columns) == '{mesh} : "Heart Diseases"'


def test_fts5_executes_with_keywords_and_punctuation() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE docs USING fts5(title, abstract, mesh)")
    connection.executemany(
        "INSERT INTO docs(rowid, title, abstract, mesh) VALUES (?, ?, ?, ?)",
        [
            (1, "Near and not: or", "HIV-1 infection in adults", "HIV Infections"),
            (2, "Aspirin for stroke", "a randomised trial", "Stroke"),
            (3, "Warfarin", "randomized, placebo-controlled", "Heart Diseases"),
        ],
    )
    columns = {"tiab": ["title", "abstract"], "ti": ["title"], "mh": ["mesh"]}

    def run(query: str) -> set[int]:
        return fts_search(connection, to_fts5(parse(query), columns))

    assert run('"near and not"[ti] OR "or"[ti]') == {1}
    assert run("hiv-1*[tiab]") == {1}
    assert run("randomi*[tiab] NOT aspirin[ti]") == {3}
    assert run('placebo-controlled[tiab] OR "HIV Infections"[mh]') == {1, 3}
    assert run("stroke[mh] AND (aspirin OR warfarin)") == {2}


@pytest.mark.parametrize(
    ("distance", "expected"), [(0, {1}), (1, {1, 2}), (2, {1, 2, 3}), (3, {1, 2, 3})]
)
def test_fts5_proximity_counts_words_between(distance: int, expected: set[int]) -> None:
    docs = [
        {"title": "", "abstract": "", "year": 2000},
        {"title": "pain in the hip", "abstract": "hip pain", "year": 2000},
        {"title": "hip joint pain", "abstract": "", "year": 2000},
        {"title": "", "abstract": "hip and knee pain", "year": 2000},
    ]
    node = parse(f'"hip pain"[tiab:~{distance}]')
    assert fts_search(fts_table(docs), to_fts5(node, FTS_COLUMNS)) == expected
    assert {i for i, doc in enumerate(docs) if evaluate(node, doc)} == expected


def test_fts5_refuses_what_it_cannot_express() -> None:
    columns = {"tiab": ["title", "abstract"]}
    assert can_fts5(parse("a[tiab] OR b"), columns)
    for query in ("a[tiab] AND 2010:2020[dp]", "#1 OR a", "a[mh]", "a[tiab] NOT b[pt]"):
        node = parse(query)
        assert not can_fts5(node, columns)
        with pytest.raises(QueryError):
            to_fts5(node, columns)
    with pytest.raises(QueryError, match="column name"):
        to_fts5(parse("a[tiab]"), {"tiab": ["title abstract"]})


# --------------------------------------------------------------------------------------------
# ClinicalTrials.gov


def test_ctgov_rendering() -> None:
    query = parse(
        '(heart attack[tiab] OR "myocardial infarction"[mh]) AND aspirin[ti] '
        "NOT (animals[mh] NOT humans[mh])"
    )
    result = to_ctgov(query)
    assert result.params == {
        "query.term": '(((heart attack) OR "myocardial infarction") AND AREA[TitleSearch]aspirin)'
        " AND NOT (animals AND NOT humans)"
    }
    assert result.warnings == ()


def test_ctgov_drops_and_approximates_with_warnings() -> None:
    query = parse(
        "(randomized controlled trial[pt] OR randomi*[tiab] OR placebo[tiab]) AND stroke "
        "AND english[la] AND 2010:2020[dp] NOT letter[pt]"
    )
    result = to_ctgov(query)
    assert result.params == {
        "query.term": "(randomi OR placebo) AND stroke AND AREA[StartDate]RANGE[2010-01-01, 2020-12-31]"
    }
    assert [w.split(":")[0] for w in result.warnings] == [
        "dropped randomized controlled trial[pt]",
        "randomi*[tiab]",
        "dropped english[la]",
        "2010",
        "dropped letter[pt]",
    ]
    assert "start date" in result.warnings[3]
    open_ended = to_ctgov(parse('cancer AND "2008/03/01"[edat] : "3000"[edat]'))
    assert open_ended.params["query.term"] == (
        "cancer AND AREA[StudyFirstPostDate]RANGE[2008-03-01, MAX]"
    )


def test_ctgov_condition_intervention_and_escapes() -> None:
    result = to_ctgov(
        parse("randomized[tiab] OR 12345678[pmid]"),
        cond=parse('"atrial fibrillation"[mh] OR AF'),
        intr=parse("warfarin OR apixaban"),
    )
    assert result.params == {
        "query.term": "randomized OR AREA[ReferencePMID]12345678",
        "query.cond": '"atrial fibrillation" OR AF',
        "query.intr": "warfarin OR apixaban",
    }
    assert to_ctgov(parse("RANGE OF MISSING values")).params == {
        "query.term": "(\\RANGE OF \\MISSING values)"
    }
    assert to_ctgov(parse('"hip pain"[tiab:~3]')).params == {"query.term": "(hip pain)"}


def test_ctgov_refuses_unsearchable_queries() -> None:
    with pytest.raises(QueryError, match="nothing"):
        to_ctgov(parse("randomized controlled trial[pt] OR medline[sb]"))
    with pytest.raises(QueryError, match="resolve"):
        to_ctgov(parse("#1 AND a"))
    with pytest.raises(QueryError, match="nothing"):
        to_ctgov(parse("letter[pt] NOT a"))
    dropped = to_ctgov(parse("cancer OR (letter[pt] NOT a)"))
    assert dropped.params == {"query.term": "cancer"}
    assert any("nothing left of NOT" in w for w in dropped.warnings)


# --------------------------------------------------------------------------------------------
# Splitting


def test_split_distributes_the_largest_or_group() -> None:
    node = parse("(alpha OR bravo OR charlie) AND delta")
    assert split_query(node, max_length=len("(alpha OR bravo) AND delta")) == [
        parse("(alpha OR bravo) AND delta"),
        parse("charlie AND delta"),
    ]
    assert split_query(node) == [node]


def test_split_several_and_groups_and_keeps_not_intact() -> None:
    groups = [" OR ".join(f"{name}{i}[tiab]" for i in range(12)) for name in ("pop", "drug", "rct")]
    node = parse(" AND ".join(f"({g})" for g in groups) + " NOT (animals[mh] NOT humans[mh])")
    parts = split_query(node, max_length=300)
    assert len(parts) > 1
    right = parse("animals[mh] NOT humans[mh]")
    for part in parts:
        assert len(to_pubmed(part)) <= 300
        assert isinstance(part, Not) and part.right == right
        assert parse(to_pubmed(part)) == part
    # every combination of one term per group is in some part
    covered = set()
    for part in parts:
        assert isinstance(part.left, And)  # type: ignore[union-attr]
        groups = [[leaf.text for leaf in iter_leaves(g)] for g in part.left.items]  # type: ignore[union-attr]
        covered |= set(itertools.product(*groups))
    assert covered == set(
        itertools.product(*([f"{n}{i}" for i in range(12)] for n in ("pop", "drug", "rct")))
    )
    assert len(parts) <= 27


def test_split_by_number_of_terms() -> None:
    node = parse("(a OR b OR c OR d) AND (e OR f)")
    parts = split_query(node, max_terms=3)
    assert all(sum(1 for _ in iter_leaves(p)) <= 3 for p in parts)
    assert len(parts) == 4


def test_split_leaves_what_cannot_fit_whole() -> None:
    long_term = t("x" * 50)
    assert split_query(long_term, max_length=10) == [long_term]
    node = Not(Or((t("a"), t("b"))), long_term)
    assert split_query(node, max_length=20) == [node]
    with pytest.raises(QueryError):
        split_query(long_term, max_length=0)


def selections(node: Node) -> list[Node]:
    """The query with each OR (outside NOT's right side) reduced to one operand, every way."""
    if isinstance(node, Or):
        return [s for item in node.items for s in selections(item)]
    if isinstance(node, And):
        return [And(combo) for combo in itertools.product(*map(selections, node.items))]
    if isinstance(node, Not):
        return [Not(s, node.right) for s in selections(node.left)]
    return [node]


def not_rights(node: Node) -> list[Node]:
    if isinstance(node, Not):
        return [node.right, *not_rights(node.left), *not_rights(node.right)]
    if isinstance(node, (And, Or)):
        return [r for item in node.items for r in not_rights(item)]
    return []


split_leaves = st.one_of(
    simple_terms(),
    st.tuples(st.integers(2000, 2006), st.integers(0, 3)).map(
        lambda p: DateRange(str(p[0]), str(min(p[0] + p[1], 2006)))
    ),
)


def check_split(node: Node, docs: list[dict], percent: int, max_terms: int | None) -> list[Node]:
    """Split with a length between the shortest selection (percent 0) and the whole query (100),
    or below (infeasible), and check every promise of split_query."""
    shortest = min(len(to_pubmed(s)) for s in selections(node))
    max_length = max(1, shortest + (len(to_pubmed(node)) - shortest) * percent // 100)
    parts = split_query(node, max_length=max_length, max_terms=max_terms)
    assert parts
    original_rights = not_rights(node)
    for part in parts:
        assert parse(to_pubmed(part)) == part
        for right in not_rights(part):
            assert right in original_rights
    expected = {i for i, doc in enumerate(docs) if evaluate(node, doc)}
    union = {i for i, doc in enumerate(docs) for part in parts if evaluate(part, doc)}
    assert union == expected

    def fits(n: Node) -> bool:
        terms_ok = max_terms is None or sum(1 for _ in iter_leaves(n)) <= max_terms
        return len(to_pubmed(n)) <= max_length and terms_ok

    if fits(node):
        assert parts == [node]
    if all(fits(s) for s in selections(node)):
        assert all(fits(part) for part in parts)
    return parts


@given(
    trees(split_leaves, max_leaves=14).filter(lambda n: sum(1 for _ in iter_leaves(n)) >= 3),
    documents,
    st.integers(-30, 110),
    st.none() | st.integers(1, 6),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_split_union_equals_original(
    node: Node, docs: list[dict], percent: int, max_terms: int | None
) -> None:
    check_split(node, docs, percent, max_terms)


@given(
    st.lists(st.one_of(split_leaves, trees(split_leaves, max_leaves=3)), min_size=3, max_size=8),
    trees(split_leaves, max_leaves=4),
    documents,
    st.integers(-10, 100),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_split_under_not_keeps_the_right_side_whole(
    left: list[Node], right: Node, docs: list[dict], percent: int
) -> None:
    node = Not(Or(tuple(left)), right)
    for part in check_split(node, docs, percent, None):
        assert isinstance(part, Not) and part.right == right


def test_split_not_example() -> None:
    node = parse("(aa OR bb OR cc OR dd OR ee) NOT zz")
    assert split_query(node, max_length=len("(aa OR bb) NOT zz")) == [
        parse("(aa OR bb) NOT zz"),
        parse("(cc OR dd) NOT zz"),
        parse("ee NOT zz"),
    ]
