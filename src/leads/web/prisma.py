"""The PRISMA 2020 flow diagram (new systematic reviews, databases and registers) as SVG.

The numbers come from :meth:`leads.project.Project.status` (``PrismaCounts``): the project's
searches and imports, its duplicate groups and the standing decisions at each stage. The layout
follows the PRISMA 2020 template (Page et al., BMJ 2021;372:n71, figure 1): identification,
screening and included phases down the left, exclusions on the right. The SVG is standalone
(no scripts, no external references), so it can be opened, printed or put into a manuscript.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from leads.project import PrismaCounts

__all__ = ["prisma_svg"]

WIDTH = 920
FONT = 13
LINE = 17
PAD = 10
MAIN_X, MAIN_W = 70, 380
SIDE_X, SIDE_W = 510, 380
GAP = 34
CHARS_PER_LINE = 50  # a 380 px box at 13 px Helvetica/Arial


@dataclass
class _Box:
    lines: list[str]
    min_height: int = 0

    @property
    def height(self) -> int:
        return max(self.min_height, len(self.lines) * LINE + 2 * PAD)


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, CHARS_PER_LINE, subsequent_indent=indent) or [""]


def _box_lines(title: str, items: Sequence[tuple[str, int]]) -> list[str]:
    lines = _wrap(title)
    for name, n in items:
        lines.extend(_wrap(f"{name} (n = {n})", indent="   "))
    return lines


def _text(x: int, y: int, lines: Sequence[str], *, bold_first: bool = False) -> str:
    out = [f'<text x="{x}" y="{y}" font-size="{FONT}">']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and i == 0 else ""
        out.append(f'<tspan x="{x}" dy="{LINE if i else 0}"{weight}>{escape(line)}</tspan>')
    out.append("</text>")
    return "".join(out)


def _rect(x: int, y: int, w: int, box: _Box, *, bold_first: bool = False) -> str:
    return (f'<rect x="{x}" y="{y}" width="{w}" height="{box.height}" rx="4" fill="#ffffff" '
            f'stroke="#222222" stroke-width="1.2"/>'
            + _text(x + PAD, y + PAD + FONT, box.lines, bold_first=bold_first))


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#222222" stroke-width="1.2" '
            f'marker-end="url(#arrow)"/>')


def prisma_svg(counts: PrismaCounts, *, title: str, generated: str, still_to_screen: int = 0,
               reports_to_assess: int = 0) -> str:
    """The diagram for ``counts``; ``title`` (the review's name) and ``generated`` (a date) go
    in the header; records and reports still waiting for a decision are noted at the bottom so a
    diagram of a review in progress is not mistaken for a final one."""
    databases = sorted(counts.identified_databases.items())
    registers = sorted(counts.identified_registers.items())
    identified = _Box(_box_lines("Records identified from:", [
        ("Databases and files", sum(n for _, n in databases)), *[(f"- {name}", n) for name, n in databases],
        ("Registers", sum(n for _, n in registers)), *[(f"- {name}", n) for name, n in registers],
    ]))
    removed = _Box(_box_lines("Records removed before screening:", [
        ("Duplicate records removed", counts.duplicates_removed)]))
    screened = _Box(_wrap(f"Records screened (n = {counts.records_screened})"))
    excluded = _Box(_wrap(f"Records excluded (n = {counts.records_excluded})"))
    sought = _Box(_wrap(f"Reports sought for retrieval (n = {counts.reports_sought})"))
    not_retrieved = _Box(_wrap(f"Reports not retrieved (n = {counts.reports_not_retrieved})"))
    assessed = _Box(_wrap(f"Reports assessed for eligibility (n = {counts.reports_assessed})"))
    reasons = sorted(counts.reports_excluded.items(), key=lambda kv: (-kv[1], kv[0]))
    reports_excluded = _Box(_box_lines("Reports excluded:", reasons) if reasons
                            else ["Reports excluded (n = 0)"])
    # Tall enough for the rotated "Included" phase label beside it.
    included = _Box(_wrap(f"Studies included in review (n = {counts.studies_included})"), min_height=84)

    rows: list[tuple[str, list[tuple[_Box, _Box | None]]]] = [
        ("Identification", [(identified, removed)]),
        ("Screening", [(screened, excluded), (sought, not_retrieved), (assessed, reports_excluded)]),
        ("Included", [(included, None)]),
    ]
    parts: list[str] = []
    y = 70
    phase_spans: list[tuple[str, int, int]] = []
    previous_bottom: int | None = None
    for phase, pairs in rows:
        top = y
        for main, side in pairs:
            height = max(main.height, side.height if side else 0)
            if previous_bottom is not None:
                parts.append(_arrow(MAIN_X + MAIN_W // 2, previous_bottom, MAIN_X + MAIN_W // 2, y))
            parts.append(_rect(MAIN_X, y, MAIN_W, main, bold_first=main is identified))
            if side is not None:
                parts.append(_rect(SIDE_X, y, SIDE_W, side, bold_first=side in (removed, reports_excluded)
                                   and len(side.lines) > 1))
                mid = y + min(main.height, side.height) // 2
                parts.append(_arrow(MAIN_X + MAIN_W, mid, SIDE_X, mid))
            previous_bottom = y + main.height
            y += height + GAP
        phase_spans.append((phase, top, y - GAP))
    for phase, top, bottom in phase_spans:
        mid = (top + bottom) // 2
        parts.append(f'<rect x="14" y="{top}" width="34" height="{bottom - top}" rx="4" fill="#a8c8e8"/>'
                     f'<text x="31" y="{mid}" font-size="{FONT}" font-weight="bold" text-anchor="middle" '
                     f'transform="rotate(-90 31 {mid})">{escape(phase)}</text>')
    notes = []
    if still_to_screen:
        notes.append(f"{still_to_screen} records are still to be screened at title and abstract.")
    if reports_to_assess:
        notes.append(f"{reports_to_assess} reports are still to be assessed in full text.")
    note_y = y
    for note in notes:
        parts.append(f'<text x="{MAIN_X}" y="{note_y}" font-size="12" fill="#7a1f1f">{escape(note)}</text>')
        note_y += LINE
    height = note_y + 10
    header = (f'<text x="{MAIN_X}" y="28" font-size="16" font-weight="bold">{escape(title)}</text>'
              f'<text x="{MAIN_X}" y="48" font-size="12" fill="#444444">PRISMA 2020 flow diagram, '
              f'generated by leads on {escape(generated)}</text>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" role="img" '
        f'aria-label="PRISMA 2020 flow diagram">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#222222"/></marker></defs>'
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>'
        + header + "".join(parts) + "</svg>\n"
    )
