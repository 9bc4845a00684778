"""PubMed search syntax: a parser, an AST, renderers (PubMed, ClinicalTrials.gov, SQLite FTS5) and
a splitter for queries that are too long.

Grammar
-------
:func:`parse` reads PubMed's Boolean syntax with a `lark <https://lark-parser.readthedocs.io>`_
LALR grammar (:data:`GRAMMAR`):

* ``AND``, ``OR``, ``NOT`` (any case; write ``"and"`` in quotes to search for the word) are
  evaluated **left to right with no precedence**, as PubMed does: ``a OR b AND c`` is
  ``(a OR b) AND c``. Parentheses nest. Two units side by side with no operator between them
  (``a[ti] b[ti]``, ``"x" (y)``) are joined by AND, as PubMed does.
* Adjacent bare words form **one** multi-word term: ``heart attack[tiab]`` is the term
  ``heart attack``, not ``heart AND attack``.
* ``"quoted phrases"``; typographic quotes (“ ”), common in strategies pasted from word
  processors, are read as plain double quotes.
* Truncation: ``*`` at the end of a word or phrase (``random*``, ``"ear mould*"``). A ``*``
  elsewhere is an error, and so are Ovid's ``$`` and ``?`` wildcards.
* Field tags in square brackets after a term or phrase, short or long form, any case, spaces
  ignored (``[tiab]``, ``[Title/Abstract]``, ``[MeSH Terms]``, ``[mesh: noexp]``,
  ``[Date - Entrez]``; :data:`FIELD_ALIASES` lists them all). ``:noexp`` is allowed on MeSH
  tags, ``:~N`` (proximity) on ``[tiab]``, ``[ti]`` and ``[ab]`` after a phrase of two or more
  words. An unknown tag is an error.
* Dates: ``2010:2020[dp]``, ``2010/01/01:2020/12/31[dp]``,
  ``"2010/01/01"[dp] : "2020/12/31"[dp]``, and a single date ``2015[dp]`` (a one-date range).
  Dates are ``YYYY``, ``YYYY/MM`` or ``YYYY/MM/DD`` (``-`` also accepted as separator).
* Search history references ``#3`` (see :func:`resolve_refs` and :func:`parse_strategy`).

Every syntax error raises :class:`~leads.errors.QueryError` with the 0-based ``position`` of the
fault and a message that names it (unbalanced parenthesis, unclosed quote or bracket, dangling
operator, unknown field tag, misplaced ``*``...).

AST
---
Frozen, hashable dataclasses; equal queries give equal trees (``==``). Constructors validate and
normalise (whitespace collapsed, nested ``And``/``Or`` of the same kind flattened), so every
tree that exists is valid and renders to a query that parses back to an equal tree.

``Term(text, field=None, phrase=False, truncated=False, noexp=False, proximity=None)``
    One search term. ``text`` is the words as written (without quotes and without the trailing
    ``*``); ``field`` a canonical field name from :data:`FIELDS` or ``None`` for an untagged
    term (PubMed's automatic term mapping over all fields); ``phrase`` whether it was quoted;
    ``truncated`` whether it ended in ``*``; ``noexp`` for ``[mh:noexp]``/``[majr:noexp]``;
    ``proximity`` the ``N`` of ``[tiab:~N]``. For MeSH fields, :attr:`Term.heading` and
    :attr:`Term.subheading` split ``"Estrogens/therapeutic use"``.
``DateRange(start, end, field)``
    A date range on one of :data:`DATE_FIELDS`; ``start``/``end`` are ``YYYY[/MM[/DD]]``
    strings, inclusive; :meth:`DateRange.first_day` and :meth:`DateRange.last_day` give the
    ``datetime.date`` bounds (``2012/11`` ends on 2012-11-30).
``Ref(number)``
    A search history reference ``#number``.
``And(items)``, ``Or(items)``
    Two or more operands (a tuple), in order.
``Not(left, right)``
    ``left`` without ``right`` (PubMed's binary NOT).

``Node`` is the union of these. An evaluator walks it with ``match``/``isinstance``: leaves are
``Term``, ``DateRange`` and ``Ref``; ``And``/``Or`` have ``items``; ``Not`` has ``left`` and
``right``.

Renderers
---------
:func:`to_pubmed`
    Canonical PubMed syntax, every compound operand in parentheses (so the text means the same
    under left-to-right and under conventional precedence). ``parse(to_pubmed(t)) == t``.
:func:`to_ctgov`
    A ClinicalTrials.gov API v2 query (Essie syntax) as :class:`CtgovQuery` (``params`` and
    ``warnings`` for what had to be dropped or approximated).
:func:`to_fts5`
    An SQLite FTS5 ``MATCH`` expression for the fields mapped to FTS5 columns; raises
    ``QueryError`` for what FTS5 cannot express (date ranges, history references, fields with no
    columns). :func:`can_fts5` tells beforehand, so an evaluator can render the expressible
    subtrees with FTS5 and handle the rest (MeSH explosion, dates) in SQL.
:func:`split_query`
    Splits a query that renders too long (or has too many terms) into sub-queries whose union of
    results is the original's.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from leads.errors import QueryError

__all__ = [
    "DATE_FIELDS",
    "FIELDS",
    "FIELD_ALIASES",
    "GRAMMAR",
    "And",
    "CtgovQuery",
    "DateRange",
    "Node",
    "Not",
    "Or",
    "Ref",
    "Term",
    "can_fts5",
    "iter_leaves",
    "parse",
    "parse_strategy",
    "resolve_refs",
    "split_query",
    "strategy_lines",
    "to_ctgov",
    "to_fts5",
    "to_pubmed",
]

# --------------------------------------------------------------------------------------------
# Fields

#: Canonical names of the fields that hold text (terms).
FIELDS: frozenset[str] = frozenset(
    [
        "tiab",
        "ti",
        "ab",
        "mh",
        "majr",
        "pt",
        "tw",
        "all",
        "au",
        "la",
        "sb",
        "sh",
        "nm",
        "ot",
        "pmid",
        "doi",
    ]
)
#: Canonical names of date fields (ranges): publication, Entrez, create, MeSH and completion date.
DATE_FIELDS: frozenset[str] = frozenset({"dp", "edat", "crdt", "mhda", "dcom"})

_ALIASES: dict[str, tuple[str, ...]] = {
    "tiab": ("tiab", "title/abstract"),
    "ti": ("ti", "title"),
    "ab": ("ab", "abstract"),
    "mh": ("mh", "mesh", "mesh terms", "mesh term", "mesh headings"),
    "majr": ("majr", "mesh major topic"),
    "pt": ("pt", "publication type", "ptyp"),
    "tw": ("tw", "text word", "text words", "textword"),
    "all": ("all", "all fields"),
    "au": ("au", "author", "author name"),
    "la": ("la", "language", "lang"),
    "sb": ("sb", "subset", "filter"),
    "sh": ("sh", "subheading", "mesh subheading"),
    "nm": ("nm", "supplementary concept", "substance name"),
    "ot": ("ot", "other term"),
    "pmid": ("pmid", "uid"),
    "doi": ("doi",),
    "dp": ("dp", "pdat", "publication date", "date - publication"),
    "edat": ("edat", "entrez date", "date - entrez"),
    "crdt": ("crdt", "create date", "date - create"),
    "mhda": ("mhda", "mesh date", "date - mesh"),
    "dcom": ("dcom", "completion date", "date - completion"),
}


def _tag_key(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


#: Every accepted tag spelling (lower case, spaces removed) -> canonical field name.
FIELD_ALIASES: Mapping[str, str] = {
    _tag_key(alias): canonical for canonical, aliases in _ALIASES.items() for alias in aliases
}
_MESH_FIELDS = frozenset({"mh", "majr"})
_PROXIMITY_FIELDS = frozenset({"tiab", "ti", "ab"})
_KEYWORDS = frozenset({"and", "or", "not"})

# Characters of a bare word. Excluded: whitespace, syntax ( ) [ ] " “ ” : * #, and Ovid's
# wildcards $ ? (so that they are reported instead of silently searched as text).
_WORD_CHARS = r"[^\s()\[\]\"“”:*#$?]"
_WORD_RE = re.compile(f"{_WORD_CHARS}+")
_QUOTES = '"“”'
_MAX_DEPTH = 100

# --------------------------------------------------------------------------------------------
# AST


def _collapse(text: str) -> str:
    return " ".join(re.split(r"\s+", text.strip()))


@dataclass(frozen=True, slots=True)
class Term:
    """One search term; see the module docstring."""

    text: str
    field: str | None = None
    phrase: bool = False
    truncated: bool = False
    noexp: bool = False
    proximity: int | None = None

    def __post_init__(self) -> None:
        text = _collapse(self.text) if isinstance(self.text, str) else ""
        if not text:
            raise QueryError("a search term must be non-empty text")
        if self.field is not None and self.field not in FIELDS:
            if self.field in DATE_FIELDS:
                raise QueryError(f"[{self.field}] is a date field: use a date range")
            raise QueryError(f"unknown field {self.field!r}")
        if self.field in _MESH_FIELDS:
            text = re.sub(r"\s*/\s*", "/", text)
        if self.phrase:
            bad = next((c for c in text if c in _QUOTES or c == "*"), None)
            if bad is not None:
                raise QueryError(f"a phrase cannot contain {bad!r}")
        else:
            for word in text.split(" "):
                if not _WORD_RE.fullmatch(word):
                    bad = next(c for c in word if not _WORD_RE.fullmatch(c))
                    raise QueryError(f"{bad!r} cannot appear in an unquoted term: quote the phrase")
                if word.lower() in _KEYWORDS:
                    raise QueryError(f"{word!r} is an operator: quote it to search for the word")
        if self.noexp and self.field not in _MESH_FIELDS:
            raise QueryError(":noexp applies only to MeSH tags ([mh], [majr])")
        if self.proximity is not None:
            if self.field not in _PROXIMITY_FIELDS:
                raise QueryError("proximity (:~N) applies only to [tiab], [ti] and [ab]")
            if not self.phrase or " " not in text:
                raise QueryError("proximity (:~N) needs a quoted phrase of two or more words")
            if self.truncated:
                raise QueryError("proximity (:~N) cannot be combined with truncation")
            if (
                not isinstance(self.proximity, int)
                or isinstance(self.proximity, bool)
                or not 0 <= self.proximity <= 10_000
            ):
                raise QueryError("proximity (:~N) needs a whole number N >= 0")
        object.__setattr__(self, "text", text)

    @property
    def heading(self) -> str:
        """The MeSH heading without its subheading (``"Estrogens"``)."""
        return self.text.split("/", 1)[0]

    @property
    def subheading(self) -> str | None:
        """The MeSH subheading of ``"Estrogens/therapeutic use"`` (``"therapeutic use"``)."""
        parts = self.text.split("/", 1)
        return parts[1] if len(parts) == 2 and self.field in _MESH_FIELDS else None


_DATE_RE = re.compile(r"(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?")


def _normalize_date(text: str) -> str:
    m = _DATE_RE.fullmatch(text.strip())
    if not m:
        raise QueryError(f"{text!r} is not a date (YYYY, YYYY/MM or YYYY/MM/DD)")
    year = int(m.group(1))
    month, day = (int(g) if g else None for g in m.group(2, 3))
    try:
        dt.date(year, month or 1, day or 1)
    except ValueError:
        raise QueryError(f"{text!r} is not a valid date") from None
    out = f"{year:04d}"
    if month:
        out += f"/{month:02d}"
    if day:
        out += f"/{day:02d}"
    return out


def _first_day(date: str) -> dt.date:
    parts = [int(p) for p in date.split("/")]
    return dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)


def _last_day(date: str) -> dt.date:
    parts = [int(p) for p in date.split("/")]
    if len(parts) == 3:
        return dt.date(*parts)
    month = parts[1] if len(parts) == 2 else 12
    return dt.date(parts[0], month, calendar.monthrange(parts[0], month)[1])


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive date range on a date field; see the module docstring."""

    start: str
    end: str
    field: str = "dp"

    def __post_init__(self) -> None:
        if self.field not in DATE_FIELDS:
            raise QueryError(f"[{self.field}] is not a date field")
        start, end = _normalize_date(self.start), _normalize_date(self.end)
        if _first_day(start) > _last_day(end):
            raise QueryError(f"date range {start}:{end} ends before it starts")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def first_day(self) -> dt.date:
        return _first_day(self.start)

    def last_day(self) -> dt.date:
        return _last_day(self.end)


@dataclass(frozen=True, slots=True)
class Ref:
    """A search history reference ``#number``."""

    number: int

    def __post_init__(self) -> None:
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 1:
            raise QueryError("a search history reference is #1 or higher")


def _operands(kind: type, items: Sequence[Node]) -> tuple[Node, ...]:
    flat: list[Node] = []
    for item in items:
        if not isinstance(item, _NODE_TYPES):
            raise QueryError(f"{kind.__name__} operands must be query nodes, not {item!r}")
        flat.extend(item.items if isinstance(item, (And, Or)) and type(item) is kind else (item,))
    if len(flat) < 2:
        raise QueryError(f"{kind.__name__} needs at least two operands")
    return tuple(flat)


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items``."""

    items: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _operands(And, self.items))


@dataclass(frozen=True, slots=True)
class Or:
    """Any of ``items``."""

    items: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _operands(Or, self.items))


@dataclass(frozen=True, slots=True)
class Not:
    """``left`` without ``right``."""

    left: Node
    right: Node

    def __post_init__(self) -> None:
        if not isinstance(self.left, _NODE_TYPES) or not isinstance(self.right, _NODE_TYPES):
            raise QueryError("NOT operands must be query nodes")


Node: TypeAlias = Term | DateRange | Ref | And | Or | Not
_NODE_TYPES = (Term, DateRange, Ref, And, Or, Not)
_LEAF_TYPES = (Term, DateRange, Ref)


def iter_leaves(node: Node) -> Iterator[Term | DateRange | Ref]:
    """The leaves of ``node`` in query order."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, _LEAF_TYPES):
            yield current
        elif isinstance(current, Not):
            stack += [current.right, current.left]
        else:
            stack.extend(reversed(current.items))


# --------------------------------------------------------------------------------------------
# Parser

_KW = r"(?i:and|or|not)(?!" + _WORD_CHARS + ")"
_BARE = (
    rf"(?!{_KW}){_WORD_CHARS}+\*?"
    rf"(?:\s+(?!{_KW}){_WORD_CHARS}+\*?)*"
)

#: The lark grammar of PubMed queries (LALR, basic lexer).
GRAMMAR = rf"""
start: chain
     |                      -> empty
chain: unit (OP unit | unit)*
unit: LPAR chain RPAR       -> group
    | REF                   -> ref
    | side                  -> single
    | side COLON side       -> range
side: (BARE | PHRASE) TAG?

OP: /{_KW}/
BARE: /{_BARE}/
PHRASE: /[\"“”][^\"“”]*[\"“”]/
TAG: /\[[^\[\]]*\]/
REF: /#\d+/
LPAR: "("
RPAR: ")"
COLON: ":"
WS: /\s+/
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="basic", propagate_positions=False)


def parse(query: str) -> Node:
    """Parse a PubMed query into its AST; raises :class:`QueryError` with the fault's position."""
    if not isinstance(query, str):
        raise QueryError("a query must be a string")
    _precheck(query)
    try:
        tree = _PARSER.parse(query)
    except UnexpectedInput as error:
        raise _syntax_error(query, error) from None
    except LarkError as error:  # pragma: no cover - lark raises UnexpectedInput for bad input
        raise QueryError(f"cannot parse the query: {error}", query=query, position=0) from None
    if tree.data == "empty":
        raise QueryError("the query is empty", query=query, position=0)
    try:
        return _Builder(query).chain(_tree(tree.children[0]))
    except RecursionError:
        raise QueryError("the query is nested too deeply", query=query, position=0) from None


def _precheck(query: str) -> None:
    """Quotes, brackets and parentheses first: their errors are clearer found directly."""
    stack: list[int] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in _QUOTES:
            end = next((j for j in range(i + 1, n) if query[j] in _QUOTES), -1)
            if end < 0:
                raise QueryError("unclosed quotation mark", query=query, position=i)
            i = end + 1
            continue
        if c == "[":
            end = query.find("]", i + 1)
            if end < 0:
                raise QueryError("unclosed '[' (field tag)", query=query, position=i)
            i = end + 1
            continue
        if c == "]":
            raise QueryError("']' without a matching '['", query=query, position=i)
        if c == "(":
            stack.append(i)
            if len(stack) > _MAX_DEPTH:
                raise QueryError("parentheses nested too deeply", query=query, position=i)
        elif c == ")":
            if not stack:
                raise QueryError("unbalanced ')': no matching '('", query=query, position=i)
            stack.pop()
        i += 1
    if stack:
        raise QueryError("unbalanced '(': no matching ')'", query=query, position=stack[-1])


_CHAR_MESSAGES = {
    "*": "truncation '*' must directly follow a word (no leading or standalone wildcard)",
    "$": "'$' is not PubMed syntax (Ovid truncation?): use '*' at the end of a word",
    "?": "'?' wildcards are not PubMed syntax: use '*' at the end of a word",
    "#": "'#' must be followed by a search number, as in #3",
    "[": "'[' inside a field tag",
}


def _tokens_before(query: str, position: int) -> list[Token]:
    tokens: list[Token] = []
    try:
        for token in _PARSER.lex(query):
            if _pos(token) >= position:
                break
            tokens.append(token)
    except UnexpectedInput:
        pass
    return tokens


def _syntax_error(query: str, error: UnexpectedInput) -> QueryError:
    if isinstance(error, UnexpectedCharacters):
        pos = error.pos_in_stream or 0
        message = _CHAR_MESSAGES.get(query[pos], f"unexpected character {query[pos]!r}")
        return QueryError(message, query=query, position=pos)
    if isinstance(error, UnexpectedToken):
        token = error.token
        at_end = token.type == "$END"
        pos = len(query) if at_end else _pos(token)
        before = _tokens_before(query, pos)
        prev = before[-1] if before else None
        if token.type == "OP" and (prev is None or prev.type in ("OP", "LPAR")):
            return QueryError(
                f"operator {token.upper()} needs a search term before it",
                query=query,
                position=pos,
            )
        if (at_end or token.type == "RPAR") and prev is not None and prev.type == "OP":
            return QueryError(
                f"operator {prev.upper()} needs a search term after it",
                query=query,
                position=_pos(prev),
            )
        if token.type == "RPAR" and prev is not None and prev.type == "LPAR":
            return QueryError("empty parentheses", query=query, position=_pos(prev))
        if token.type == "TAG":
            if prev is not None and prev.type == "TAG":
                return QueryError("a term can carry only one field tag", query=query, position=pos)
            return QueryError(
                "a field tag must follow a search term or phrase", query=query, position=pos
            )
        if token.type == "COLON" or (prev is not None and prev.type == "COLON"):
            colon = _pos(prev) if prev is not None and prev.type == "COLON" else pos
            return QueryError(
                "':' is only valid in a date range such as 2010:2020[dp]",
                query=query,
                position=colon,
            )
        if at_end:
            return QueryError("the query ends unexpectedly", query=query, position=pos)
        return QueryError(f"unexpected {str(token)!r}", query=query, position=pos)
    return QueryError(f"cannot parse the query: {error}", query=query, position=0)


def _parse_tag(tag: Token, query: str) -> tuple[str, bool, int | None]:
    """``[Title/Abstract:~3]`` -> ``("tiab", False, 3)``."""
    body = _tag_key(tag[1:-1])
    name, _, modifier = body.partition(":")
    canonical = FIELD_ALIASES.get(name)
    if canonical is None:
        raise QueryError(
            f"unknown field tag {tag} (PubMed tags are such as [tiab], [mh], [pt], [dp])",
            query=query,
            position=_pos(tag),
        )
    if not modifier:
        return canonical, False, None
    if modifier == "noexp":
        return canonical, True, None
    if modifier.startswith("~") and modifier[1:].isdigit():
        return canonical, False, int(modifier[1:])
    raise QueryError(
        f"unknown field tag modifier ':{modifier}' (known: :noexp, :~N)",
        query=query,
        position=_pos(tag),
    )


def _tree(child: Tree | Token) -> Tree:
    assert isinstance(child, Tree)
    return child


def _token(child: Tree | Token) -> Token:
    assert isinstance(child, Token)
    return child


def _pos(token: Token) -> int:
    return token.start_pos or 0


class _Builder:
    """Turns lark's parse tree into the AST, with positions for semantic errors."""

    def __init__(self, query: str) -> None:
        self.query = query

    def error(self, message: str, position: int) -> QueryError:
        return QueryError(message, query=self.query, position=position)

    def chain(self, tree: Tree) -> Node:
        result: Node | None = None
        operator = "AND"
        for child in tree.children:
            if isinstance(child, Token):  # OP
                operator = child.upper()
                continue
            node = self.unit(_tree(child))
            if result is None:
                result = node
            elif operator == "AND":
                result = And((result, node))
            elif operator == "OR":
                result = Or((result, node))
            else:
                result = Not(result, node)
            operator = "AND"  # two units with no operator between them
        assert result is not None
        return result

    def unit(self, tree: Tree) -> Node:
        kind = tree.data
        if kind == "group":
            return self.chain(_tree(tree.children[1]))
        if kind == "ref":
            token = _token(tree.children[0])
            try:
                return Ref(int(token[1:]))
            except QueryError as error:
                raise self.error(str(error), _pos(token)) from None
        children = tree.children
        if kind == "single":
            return self.single(_tree(children[0]))
        return self.range(_tree(children[0]), _token(children[1]), _tree(children[2]))

    def side(self, tree: Tree) -> tuple[Token, str, bool, bool, Token | None]:
        """(token, text, phrase, truncated, tag) of a term or phrase."""
        token = _token(tree.children[0])
        tag = _token(tree.children[1]) if len(tree.children) > 1 else None
        if token.type == "PHRASE":
            inner = token[1:-1]
            stripped = inner.rstrip()
            star = stripped.find("*")
            truncated = star >= 0 and star == len(stripped) - 1
            if star >= 0 and not truncated:
                raise self.error(
                    "truncation '*' is only allowed at the end of a phrase",
                    _pos(token) + 1 + star,
                )
            text = stripped[:-1] if truncated else inner
            if not text.strip():
                raise self.error("empty phrase", _pos(token))
            return token, text, True, truncated, tag
        words = re.split(r"(\s+)", token)
        offset = 0
        for index, piece in enumerate(words):
            if index % 2 == 0 and piece.endswith("*") and index < len(words) - 1:
                raise self.error(
                    "truncation '*' inside a multi-word term: quote the phrase or add an operator",
                    _pos(token) + offset + len(piece) - 1,
                )
            offset += len(piece)
        truncated = token.endswith("*")
        return token, token[:-1] if truncated else str(token), False, truncated, tag

    def single(self, tree: Tree) -> Node:
        token, text, phrase, truncated, tag = self.side(tree)
        if tag is None:
            field_name, noexp, proximity = None, False, None
        else:
            field_name, noexp, proximity = _parse_tag(tag, self.query)
        try:
            if field_name in DATE_FIELDS:
                if truncated or noexp or proximity is not None:
                    raise QueryError(f"a date cannot be truncated or carry modifiers in {tag}")
                return DateRange(text, text, field_name)
            return Term(text, field_name, phrase, truncated, noexp, proximity)
        except QueryError as error:
            raise self.error(str(error), _pos(token)) from None

    def range(self, left: Tree, colon: Token, right: Tree) -> Node:
        sides = [self.side(left), self.side(right)]
        tags = [side[4] for side in sides if side[4] is not None]
        if not tags:
            raise self.error("':' is only valid in a date range such as 2010:2020[dp]", _pos(colon))
        fields = set()
        for tag in tags:
            name, noexp, proximity = _parse_tag(tag, self.query)
            if name not in DATE_FIELDS or noexp or proximity is not None:
                raise self.error(
                    f"a range needs a date field tag such as [dp], not {tag}", _pos(tag)
                )
            fields.add(name)
        if len(fields) > 1:
            raise self.error("the two ends of a date range have different field tags", _pos(colon))
        for token, _, _, truncated, _ in sides:
            if truncated:
                raise self.error("a date cannot be truncated", _pos(token))
        try:
            start = _normalize_date(sides[0][1])
        except QueryError as error:
            raise self.error(str(error), _pos(sides[0][0])) from None
        try:
            end = _normalize_date(sides[1][1])
        except QueryError as error:
            raise self.error(str(error), _pos(sides[1][0])) from None
        try:
            return DateRange(start, end, fields.pop())
        except QueryError as error:
            raise self.error(str(error), _pos(sides[0][0])) from None


# --------------------------------------------------------------------------------------------
# Search histories

_NUMBERED_LINE = re.compile(r"\s*(?:#\s*(\d+)|(\d+)\s*\.)\s*")
_SEARCH_PREFIX = re.compile(r"\Asearch\b\s*:?\s*", re.IGNORECASE)
_LABEL = re.compile(r"\s*[^\s:()\[\]\"“”#][^:()\[\]\"“”#]*:\s*")
_DATE_TEXT = r"\d{4}(?:[/-]\d{1,2}){0,2}"
_LIMITS = re.compile(
    rf"\s+Limits?\s*:\s*(?:Publication\s+Date\s+from\s+)?({_DATE_TEXT})\s*(?:to|:)\s*"
    rf"({_DATE_TEXT})\s*$",
    re.IGNORECASE,
)


def resolve_refs(node: Node, history: Mapping[int, Node]) -> Node:
    """Replace every ``#n`` in ``node`` by ``history[n]`` (which must not contain references)."""
    if isinstance(node, Ref):
        if node.number not in history:
            raise QueryError(f"search #{node.number} is not defined")
        return history[node.number]
    if isinstance(node, Not):
        return Not(resolve_refs(node.left, history), resolve_refs(node.right, history))
    if isinstance(node, (And, Or)):
        return type(node)(tuple(resolve_refs(item, history) for item in node.items))
    return node


def strategy_lines(text: str) -> list[tuple[int, str]]:
    """The numbered searches of a PubMed search history, as ``(number, query)``.

    Lines are numbered ``#3 ...`` or ``3. ...`` (when the first line is numbered) or counted
    from 1 (when it is not); blank lines and label lines such as ``PubMed:`` are skipped. What
    PubMed's history export adds is undone: a leading ``Search`` or ``Search:`` is dropped, and a trailing
    ``Limits: Publication Date from 2008/08/29 to 2009/06/05`` (or ``Limit: 2008:2009``) becomes
    ``(query) AND 2008/08/29:2009/06/05[dp]``. Other text is left for :func:`parse` to judge.
    """
    lines = [line for line in text.splitlines() if line.strip() and not _LABEL.fullmatch(line)]
    numbered = bool(lines) and _NUMBERED_LINE.match(lines[0]) is not None
    out: list[tuple[int, str]] = []
    for count, line in enumerate(lines, start=1):
        number, body = count, line
        if numbered:
            m = _NUMBERED_LINE.match(line)
            if m is None:
                raise QueryError(f"line {count} has no search number", query=line, position=0)
            number, body = int(m.group(1) or m.group(2)), line[m.end() :]
        body = _SEARCH_PREFIX.sub("", body.strip(), count=1)
        limits = _LIMITS.search(body)
        if limits:
            body = f"({body[: limits.start()]}) AND {limits.group(1)}:{limits.group(2)}[dp]"
        out.append((number, body))
    return out


def parse_strategy(text: str) -> Node:
    """Parse a PubMed search history into the query of its last search, references resolved.

    The lines are read by :func:`strategy_lines`; ``#n`` references are resolved whatever the
    order of the lines; the result is the search with the highest number, fully expanded.
    Errors name the search: ``QueryError.query`` is that line and ``position`` is within it.
    """
    raw: dict[int, Node] = {}
    for number, body in strategy_lines(text):
        try:
            raw[number] = parse(body)
        except QueryError as error:
            reason = re.sub(r" at position \d+$", "", str(error).split("\n", 1)[0])
            raise QueryError(
                f"search #{number}: {reason}", query=body, position=error.position
            ) from None
    if not raw:
        raise QueryError("the search strategy is empty")
    resolved: dict[int, Node] = {}

    def resolve(number: int, active: tuple[int, ...]) -> Node:
        if number in resolved:
            return resolved[number]
        if number in active:
            path = " -> ".join(f"#{n}" for n in (*active, number))
            raise QueryError(f"search #{number} refers to itself ({path})")
        if number not in raw:
            raise QueryError(f"search #{active[-1]} refers to #{number}, which is not defined")
        refs = {leaf.number for leaf in iter_leaves(raw[number]) if isinstance(leaf, Ref)}
        history = {ref: resolve(ref, (*active, number)) for ref in refs}
        resolved[number] = resolve_refs(raw[number], history)
        return resolved[number]

    return resolve(max(raw), ())


# --------------------------------------------------------------------------------------------
# PubMed rendering

_COMPOUND = (And, Or, Not)


def to_pubmed(node: Node) -> str:
    """Canonical PubMed syntax; ``parse(to_pubmed(node)) == node``."""
    if isinstance(node, Term):
        star = "*" if node.truncated else ""
        text = f'"{node.text}{star}"' if node.phrase else f"{node.text}{star}"
        if node.field is None:
            return text
        modifier = ":noexp" if node.noexp else ""
        if node.proximity is not None:
            modifier = f":~{node.proximity}"
        return f"{text}[{node.field}{modifier}]"
    if isinstance(node, DateRange):
        if node.start == node.end:
            return f"{node.start}[{node.field}]"
        return f"{node.start}:{node.end}[{node.field}]"
    if isinstance(node, Ref):
        return f"#{node.number}"
    if isinstance(node, Not):
        return f"{_pubmed_operand(node.left)} NOT {_pubmed_operand(node.right)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return joiner.join(_pubmed_operand(item) for item in node.items)


def _pubmed_operand(node: Node) -> str:
    text = to_pubmed(node)
    return f"({text})" if isinstance(node, _COMPOUND) else text


# --------------------------------------------------------------------------------------------
# ClinicalTrials.gov (Essie)


@dataclass(frozen=True)
class CtgovQuery:
    """A ClinicalTrials.gov API v2 query: ``params`` for ``GET /studies`` and ``warnings``
    naming every part of the PubMed query that was dropped or approximated."""

    params: dict[str, str]
    warnings: tuple[str, ...] = field(default=())


# Essie's own operator words must be escaped with a backslash when searched as text.
_ESSIE_OPERATORS = frozenset(
    [
        "AND",
        "OR",
        "NOT",
        "AREA",
        "SEARCH",
        "EXPANSION",
        "COVERAGE",
        "TILT",
        "RANGE",
        "MISSING",
        "ALL",
    ]
)
_CTGOV_DROPPED = {
    "pt": "publication types have no registry equivalent",
    "sb": "PubMed subsets have no registry equivalent",
    "la": "languages are not indexed by ClinicalTrials.gov",
    "sh": "MeSH subheadings have no registry equivalent",
    "au": "authors are not indexed by ClinicalTrials.gov",
    "doi": "DOIs are not indexed by ClinicalTrials.gov",
    "mhda": "MeSH dates have no registry equivalent",
    "dcom": "MEDLINE completion dates have no registry equivalent",
}
_CTGOV_DATE_AREAS = {
    "dp": ("StartDate", "publication date searched as the study start date"),
    "edat": ("StudyFirstPostDate", "Entrez date searched as the study's first posted date"),
    "crdt": ("StudyFirstPostDate", "create date searched as the study's first posted date"),
}


class _Essie:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def text(self, term: Term) -> str:
        if term.phrase and term.proximity is None:
            return '"' + term.text.replace('"', '\\"') + '"'
        words = [("\\" + w if w in _ESSIE_OPERATORS else w) for w in term.text.split(" ")]
        return words[0] if len(words) == 1 else "(" + " ".join(words) + ")"

    def render(self, node: Node) -> str | None:
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, DateRange):
            return self.dates(node)
        if isinstance(node, Ref):
            raise QueryError(f"#{node.number} must be resolved before rendering (resolve_refs)")
        if isinstance(node, Not):
            left = self.render(node.left)
            right = self.render(node.right)
            if left is None:
                self.warn(f"dropped {to_pubmed(node)}: nothing left of NOT can be searched")
                return None
            if right is None:
                return left
            return f"{self.operand(node.left, left)} AND NOT {self.operand(node.right, right)}"
        rendered = [(item, self.render(item)) for item in node.items]
        kept = [(item, text) for item, text in rendered if text is not None]
        if not kept:
            return None
        if len(kept) == 1:
            return kept[0][1]
        joiner = " AND " if isinstance(node, And) else " OR "
        return joiner.join(self.operand(item, text) for item, text in kept)

    def operand(self, node: Node, text: str) -> str:
        return f"({text})" if isinstance(node, _COMPOUND) else text

    def term(self, term: Term) -> str | None:
        if term.field in _CTGOV_DROPPED:
            self.warn(f"dropped {to_pubmed(term)}: {_CTGOV_DROPPED[term.field]}")
            return None
        if term.truncated:
            self.warn(
                f"{to_pubmed(term)}: ClinicalTrials.gov has no truncation; searched as a word "
                "(Essie applies its own stemming and synonyms)"
            )
        if term.proximity is not None:
            self.warn(f"{to_pubmed(term)}: no proximity search; its words are searched together")
        text = self.text(term)
        if term.field == "ti":
            return f"AREA[TitleSearch]{text}"
        if term.field == "pmid":
            return f"AREA[ReferencePMID]{text}"
        # tiab, ab, tw, all, mh, majr, nm, ot and untagged terms: the default search area (titles,
        # summaries, conditions, interventions, keywords); MeSH terms plain, since
        # ClinicalTrials.gov expands synonyms itself.
        return text

    def dates(self, dates: DateRange) -> str | None:
        if dates.field in _CTGOV_DROPPED:
            self.warn(f"dropped {to_pubmed(dates)}: {_CTGOV_DROPPED[dates.field]}")
            return None
        area, note = _CTGOV_DATE_AREAS[dates.field]
        self.warn(f"{to_pubmed(dates)}: {note}")
        end = "MAX" if dates.end.startswith("3000") else dates.last_day().isoformat()
        return f"AREA[{area}]RANGE[{dates.first_day().isoformat()}, {end}]"


def to_ctgov(node: Node, *, cond: Node | None = None, intr: Node | None = None) -> CtgovQuery:
    """Render ``node`` as a ClinicalTrials.gov API v2 query in Essie syntax.

    ``node`` becomes ``query.term``; the PICO parts that the caller knows to be the condition and
    the intervention can be passed as ``cond`` and ``intr`` (``query.cond``/``query.intr``, which
    ClinicalTrials.gov matches against conditions and interventions with synonym expansion; the
    API combines the parameters with AND).

    Mapping: AND, OR and parentheses as they are; ``a NOT b`` as ``a AND NOT b`` (NOT is unary in
    Essie); phrases quoted; ``[ti]`` as ``AREA[TitleSearch]``, ``[pmid]`` as
    ``AREA[ReferencePMID]``, ``[dp]`` as ``AREA[StartDate]RANGE[start, end]`` and Entrez/create
    dates as ``AREA[StudyFirstPostDate]RANGE[...]`` (year 3000, PubMed's open end, as ``MAX``);
    every other text field, MeSH included, as a plain term. Publication types, subsets,
    languages, subheadings, authors, DOIs and MeSH/completion dates mean nothing in a registry:
    they are dropped (an OR loses that operand, an AND that condition, a NOT whose right side is
    dropped keeps its left side) and ``warnings`` says so, as it does for approximations
    (truncation, proximity, dates). Raises :class:`QueryError` for a history reference and when
    nothing at all is left to search.
    """
    essie = _Essie()
    params: dict[str, str] = {}
    for name, part in (("query.term", node), ("query.cond", cond), ("query.intr", intr)):
        if part is None:
            continue
        text = essie.render(part)
        if text is None:
            essie.warn(
                f"{name}: nothing in {to_pubmed(part)} can be searched on ClinicalTrials.gov"
            )
        else:
            params[name] = text
    if not params:
        raise QueryError("nothing in this query can be searched on ClinicalTrials.gov")
    return CtgovQuery(params=params, warnings=tuple(essie.warnings))


# --------------------------------------------------------------------------------------------
# SQLite FTS5

FtsColumns: TypeAlias = Mapping[str | None, str | Sequence[str]]
_FTS_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _fts_columns(term: Term, columns: FtsColumns) -> tuple[str, ...] | None:
    """The columns for ``term``'s field, ``()`` for all columns, ``None`` when not mapped."""
    if term.field is None:
        chosen = columns.get(None, columns.get("all", ()))
    elif term.field == "all":
        chosen = columns.get("all", ())
    elif term.field in columns:
        chosen = columns[term.field]
    else:
        return None
    return (chosen,) if isinstance(chosen, str) else tuple(chosen)


def can_fts5(node: Node, columns: FtsColumns) -> bool:
    """Whether :func:`to_fts5` can render ``node`` with ``columns``."""
    return all(
        isinstance(leaf, Term) and _fts_columns(leaf, columns) is not None
        for leaf in iter_leaves(node)
    )


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_fts5(node: Node, columns: FtsColumns) -> str:
    """Render ``node`` as an SQLite FTS5 ``MATCH`` expression.

    ``columns`` maps canonical field names to FTS5 column names (a name or a list of names);
    the key ``None`` (else ``"all"``) gives the columns of untagged terms, and when neither is
    present untagged and ``[all]`` terms search every column. Each term is a quoted FTS5 string
    (so FTS5's operators and special characters inside it are text) under a column filter
    ``{title abstract} : ...``; a phrase, and an unquoted multi-word term too (as PubMed does for
    tagged terms found in its phrase index), is an FTS5 phrase; truncation is FTS5's prefix
    query on the last word (``"vein thromb" *``); ``"a b"[tiab:~N]`` is ``NEAR("a" "b", N)``;
    ``:noexp`` has no effect (FTS5 knows no MeSH tree: map ``mh`` to a column only if heading text
    matching is wanted, otherwise leave MeSH to SQL). Every compound operand is parenthesised,
    so FTS5's own precedence (NOT > AND > OR) does not matter.

    Raises :class:`QueryError` for a date range, a history reference or a field missing from
    ``columns``: check with :func:`can_fts5` and evaluate those parts in SQL.
    """
    for names in columns.values():
        for name in (names,) if isinstance(names, str) else names:
            if not _FTS_COLUMN.fullmatch(name) or name in ("AND", "OR", "NOT", "NEAR"):
                raise QueryError(f"{name!r} is not a usable FTS5 column name")
    return _fts(node, columns)


def _fts(node: Node, columns: FtsColumns) -> str:
    if isinstance(node, Term):
        cols = _fts_columns(node, columns)
        if cols is None:
            raise QueryError(
                f"{to_pubmed(node)}: field [{node.field}] has no FTS5 column; evaluate it in SQL"
            )
        if node.proximity is not None:
            words = " ".join(_fts_string(word) for word in node.text.split(" "))
            body = f"NEAR({words}, {node.proximity})"
        else:
            body = _fts_string(node.text) + (" *" if node.truncated else "")
        return f"{{{' '.join(cols)}}} : {body}" if cols else body
    if isinstance(node, DateRange):
        raise QueryError(f"{to_pubmed(node)}: FTS5 cannot search dates; evaluate it in SQL")
    if isinstance(node, Ref):
        raise QueryError(f"#{node.number} must be resolved before rendering (resolve_refs)")
    if isinstance(node, Not):
        return f"({_fts(node.left, columns)}) NOT ({_fts(node.right, columns)})"
    joiner = " AND " if isinstance(node, And) else " OR "
    return joiner.join(f"({_fts(item, columns)})" for item in node.items)


# --------------------------------------------------------------------------------------------
# Splitting long queries


def split_query(node: Node, max_length: int = 4000, max_terms: int | None = None) -> list[Node]:
    """Split ``node`` into sub-queries whose results together are exactly ``node``'s.

    Each sub-query renders (:func:`to_pubmed`) to at most ``max_length`` characters and has at
    most ``max_terms`` leaves whenever that is possible at all, that is when every *selection*
    of the query (the query with each OR reduced to one of its operands, outside the right side
    of a NOT) fits; parts that cannot fit stay as small as they can. A query that fits is
    returned alone.

    The method distributes OR groups over the AND groups around them:
    ``(A OR B OR C) AND D`` -> ``(A OR B) AND D``, ``C AND D``. ORs are packed greedily into
    parts that fit; when several AND operands need splitting, the room left by the unsplittable
    ones is shared among them so that the number of combinations stays small (every combination
    of parts becomes one sub-query); ``X NOT Y`` splits ``X`` only, keeping ``Y`` whole in every
    sub-query (``(X1 ∪ X2) − Y = (X1 − Y) ∪ (X2 − Y)``).
    """
    if max_length < 1 or (max_terms is not None and max_terms < 1):
        raise QueryError("max_length and max_terms must be at least 1")
    splitter = _Splitter()
    return splitter.split(node, max_length, math.inf if max_terms is None else max_terms)


class _Splitter:
    def __init__(self) -> None:
        # keyed by id(); the node is kept in the value so that its id cannot be reused
        self._costs: dict[int, tuple[Node, int, int]] = {}
        self._minimum: dict[int, tuple[Node, int, int]] = {}

    def cost(self, node: Node) -> tuple[int, int]:
        """(rendered length, number of leaves)."""
        hit = self._costs.get(id(node))
        if hit is None:
            hit = (node, len(to_pubmed(node)), sum(1 for _ in iter_leaves(node)))
            self._costs[id(node)] = hit
        return hit[1], hit[2]

    def operand_length(self, node: Node) -> int:
        return self.cost(node)[0] + (2 if isinstance(node, _COMPOUND) else 0)

    def minimum(self, node: Node) -> tuple[int, int]:
        """A lower bound of the cost of the cheapest selection of ``node``."""
        hit = self._minimum.get(id(node))
        if hit is not None:
            return hit[1], hit[2]
        if isinstance(node, Or):
            length, terms = (
                min(self.minimum(i)[0] for i in node.items),
                min(self.minimum(i)[1] for i in node.items),
            )
        elif isinstance(node, And):
            mins = [self.minimum(i) for i in node.items]
            length = sum(m[0] for m in mins) + 5 * (len(mins) - 1)
            terms = sum(m[1] for m in mins)
        elif isinstance(node, Not):
            left = self.minimum(node.left)
            length = left[0] + 5 + self.operand_length(node.right)
            terms = left[1] + self.cost(node.right)[1]
        else:
            length, terms = self.cost(node)
        self._minimum[id(node)] = (node, length, terms)
        return length, terms

    @staticmethod
    def splittable(node: Node) -> bool:
        if isinstance(node, Or):
            return True
        if isinstance(node, And):
            return any(_Splitter.splittable(i) for i in node.items)
        if isinstance(node, Not):
            return _Splitter.splittable(node.left)
        return False

    def fits(self, node: Node, length: float, terms: float) -> bool:
        cost = self.cost(node)
        return cost[0] <= length and cost[1] <= terms

    def split(self, node: Node, length: float, terms: float) -> list[Node]:
        if self.fits(node, length, terms) or not self.splittable(node):
            return [node]
        low = self.minimum(node)
        if low[0] > length or low[1] > terms:
            return [node]  # no sub-query can fit: keep it whole rather than in useless pieces
        if isinstance(node, Or):
            return self.split_or(node, length, terms)
        if isinstance(node, Not):
            return self.split_not(node, length, terms)
        assert isinstance(node, And)
        return self.split_and(node, length, terms)

    def split_or(self, node: Or, length: float, terms: float) -> list[Node]:
        pool: list[Node] = []
        for item in node.items:
            for part in self.split(item, length, terms):
                pool.extend(part.items if isinstance(part, Or) else (part,))
        chunks: list[list[Node]] = []
        used_length = used_terms = 0
        for part in pool:
            part_length, part_terms = self.operand_length(part), self.cost(part)[1]
            if chunks and (
                used_length + 4 + part_length <= length and used_terms + part_terms <= terms
            ):
                chunks[-1].append(part)
                used_length += 4 + part_length
                used_terms += part_terms
            else:
                chunks.append([part])
                used_length, used_terms = part_length, part_terms
        return [chunk[0] if len(chunk) == 1 else Or(tuple(chunk)) for chunk in chunks]

    def split_not(self, node: Not, length: float, terms: float) -> list[Node]:
        left_length = self.operand_length(node.left)
        room_length = length - (self.cost(node)[0] - left_length) - 2
        room_terms = terms - self.cost(node.right)[1]
        parts = self.split(node.left, max(room_length, 1), max(room_terms, 1))
        if len(parts) == 1:
            parts = self.bisect(node.left)
        return self.recombine([Not(part, node.right) for part in parts], length, terms)

    def split_and(self, node: And, length: float, terms: float) -> list[Node]:
        items = node.items
        movable = [i for i, item in enumerate(items) if self.splittable(item)]
        total_length, total_terms = self.cost(node)
        room_length = length - (total_length - sum(self.operand_length(items[i]) for i in movable))
        room_terms = terms - (total_terms - sum(self.cost(items[i])[1] for i in movable))
        # Share the room among the operands to split, smallest first: one that fits its share
        # stays whole and leaves the rest of its share to the others.
        options: list[list[Node]] = [[item] for item in items]
        left = len(movable)
        for i in sorted(movable, key=lambda i: self.operand_length(items[i])):
            share_length, share_terms = room_length / left, room_terms / left
            item = items[i]
            if self.operand_length(item) <= share_length and self.cost(item)[1] <= share_terms:
                parts = [item]
            else:
                parts = self.split(item, max(share_length - 2, 1), max(share_terms, 1))
            options[i] = parts
            room_length -= max(self.operand_length(p) for p in parts)
            room_terms -= max(self.cost(p)[1] for p in parts)
            left -= 1
        if all(len(option) == 1 for option in options):
            largest = max(movable, key=lambda i: self.operand_length(items[i]))
            options[largest] = self.bisect(items[largest])
        return self.recombine(
            [And(combination) for combination in itertools.product(*options)], length, terms
        )

    def recombine(self, candidates: list[Node], length: float, terms: float) -> list[Node]:
        out: list[Node] = []
        for candidate in candidates:
            out.extend(self.split(candidate, length, terms))
        return out

    def bisect(self, node: Node) -> list[Node]:
        """Two or more parts whose union is ``node`` (``[node]`` if it cannot be split)."""
        if isinstance(node, Or):
            items = node.items
            half = self.cost(node)[0] / 2
            running, cut = 0, 1
            for index, item in enumerate(items[:-1], start=1):
                running += self.operand_length(item) + 4
                cut = index
                if running >= half:
                    break
            return [part[0] if len(part) == 1 else Or(part) for part in (items[:cut], items[cut:])]
        if isinstance(node, Not):
            return [Not(part, node.right) for part in self.bisect(node.left)]
        if isinstance(node, And):
            movable = [i for i, item in enumerate(node.items) if self.splittable(item)]
            if not movable:
                return [node]
            j = max(movable, key=lambda i: self.operand_length(node.items[i]))
            return [
                And((*node.items[:j], part, *node.items[j + 1 :]))
                for part in self.bisect(node.items[j])
            ]
        return [node]
