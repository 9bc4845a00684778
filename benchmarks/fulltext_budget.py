"""How the classic engine's full-text eligibility verdicts and time depend on the text budget.

Runs the ``eligibility`` task (classic engine) on the input :func:`leads.screen.fulltext.fulltext_input`
builds (title, abstract and methods sections, verbatim) at several budgets, on the 4 remdesivir trial
reports bundled with ``examples/remdesivir`` (remdesivir criteria) and the two RCT reports of
``tests/fixtures/documents`` that have typed methods sections (design criterion only)::

    python benchmarks/fulltext_budget.py [--budgets 3000,6000,12000,100000]

Prints one line per document and budget: characters read, seconds, verdicts, the decision of
:func:`leads.screen.workflow.ai_decision_for`. Not a test: the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from leads.documents.reader import read_document
from leads.screen.classic import assess
from leads.screen.fulltext import fulltext_input
from leads.screen.workflow import CriterionInfo, ai_decision_for
from leads.tasks.eligibility import Criterion, EligibilityOutput

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="3000,6000,12000,100000",
                        help="comma-separated body budgets in characters")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    spec = tomllib.loads((REPO / "examples" / "remdesivir" / "review.toml").read_text(encoding="utf-8"))
    remdesivir = [Criterion(text=c) for c in spec["criteria"]["inclusion"]]
    design = [Criterion(text="The study is a randomised controlled trial")]
    cases = [(p, remdesivir) for p in sorted((REPO / "examples" / "remdesivir" / "fulltexts").glob("PMC*.xml"))]
    cases += [(REPO / "tests" / "fixtures" / "documents" / name, design) for name in ("PMC535936.nxml", "PMC5710015.nxml")]
    assess(fulltext_input(read_document(cases[0][0]), 0, design).input)  # load the models once
    for path, criteria in cases:
        doc = read_document(path)
        infos = [CriterionInfo(id=i, label=f"I{i + 1}", kind="inclusion", text=c.text, pico_element=None,
                               position=i, version=1) for i, c in enumerate(criteria)]
        for budget in budgets:
            made = fulltext_input(doc, 0, criteria, budget=budget)
            started = time.perf_counter()
            out = assess(made.input)
            assert isinstance(out, EligibilityOutput)
            seconds = time.perf_counter() - started
            verdicts = [v.eligibility for v in out.verdicts]
            decision = ai_decision_for([v.model_dump() for v in out.verdicts], infos)
            print(f"{path.name}\tbudget {budget}\tread {len(made.input.text)} of {len(doc.text)} chars "
                  f"({'+'.join(made.sections)})\t{seconds:.2f} s\t{' '.join(verdicts)}\t"
                  f"{decision[0] if decision else 'left to people'}", flush=True)


if __name__ == "__main__":
    main()
