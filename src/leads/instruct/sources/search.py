"""Search-query examples from the CLEF eHealth TAR 2017/2018 diagnostic test accuracy reviews.

Gold: the review's own expert search strategy (Ovid MEDLINE), translated line by line to PubMed
syntax by :func:`leads.eval.search.translate_ovid`; the input is what ``leads eval search`` gives
the generator for the topic (the 2018 protocol's participants, target condition, index tests and
objective, else the title). A strategy with any line that could not be translated is left out;
the approximations made (noted per example) are those the translator reports, e.g. Ovid limits
dropped. The SIGIR 2017 collection is not used: it has the strategies but no question text.

The same topics are the ``clef`` topics of ``leads eval search``: a model trained on the train
split must be evaluated on the test split's topics only (``splits.json`` lists them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from leads.instruct.sources import Candidate, SharedSource, SourceSkipped

__all__ = ["SOURCES"]

_FAILED_LINE = re.compile(r"^line \d+:")


def _clef(shared: Path, budget: int | None) -> Iterator[Candidate]:
    from leads.eval.search import clef_topics

    if not (shared / "search" / "clef_tar_2017").is_dir():
        raise SourceSkipped(f"{shared / 'search' / 'clef_tar_2017'} is missing")
    for topic in clef_topics(shared):
        if topic.baseline_query is None:
            continue
        if any(_FAILED_LINE.match(note) for note in topic.baseline_notes):
            continue
        yield Candidate(task="search_query", input=topic.input, answer={"query": topic.baseline_query},
                        item=f"clef:{topic.name}", groups=[f"clef:{topic.name}"],
                        notes=[f"Ovid strategy translated to PubMed: {note}" for note in topic.baseline_notes])


SOURCES = (
    SharedSource(
        name="search/clef-tar",
        licence="MIT (CLEF-TAR/tar)",
        tasks=("search_query",),
        read=_clef,
        description="CLEF TAR 2017/2018 DTA reviews: protocol (or title) -> the expert strategy in PubMed syntax",
    ),
)
