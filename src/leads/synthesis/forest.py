"""Forest plots (SVG or PNG) whose numbers link back to their sources.

In the SVG every study row is one ``<g class="leads-study">`` element with the study's id, its
record (``data-record-id``), effect, interval and weight as ``data-*`` attributes, the supporting
quotes as JSON in ``data-sources`` and as a readable ``<title>`` tooltip, and, given a
``link_template``, a link to the record. Pooled rows are ``<g class="leads-pooled">`` elements
listing their contributing studies and weights (``data-studies``), so a report can follow a
number span → effect → pooled estimate. The output is deterministic (fixed ``svg.hashsalt``, no
date in the metadata) so tests and caches can compare files byte for byte.
"""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Literal

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.ticker import FixedLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from leads.synthesis.models import (
    MEASURE_NAMES,
    RATIO_MEASURES,
    MetaAnalysis,
    PooledEstimate,
    StudyEffect,
    SynthesisError,
)

__all__ = ["forest_plot"]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_ROW_IN = 0.27
_WIDTH_IN = 10.0
_X_LABEL, _X_TREAT, _X_CTRL, _AX_LEFT, _AX_RIGHT, _X_EST, _X_WEIGHT = (
    0.01, 0.33, 0.43, 0.455, 0.73, 0.745, 0.985)
_MODEL_SHORT = {"fixed": "common", "random": "random"}
_METHOD_NAMES = {"IV": "inverse variance", "MH": "Mantel-Haenszel", "DL": "DerSimonian-Laird",
                 "PM": "Paule-Mandel", "REML": "REML"}

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


def _decimals(result: MetaAnalysis) -> int:
    """Decimals for the measure: 3 for risk differences, else 2 (refined per row by :func:`_row`)."""
    return 3 if result.measure == "RD" else 2


def _row(base: int, estimate: float) -> int:
    """At least two significant digits for small estimates (a pooled RD of 0.0009 is not 0.001)."""
    size = abs(estimate)
    if 0 < size < 10 ** -(base - 1) and math.isfinite(size):
        return min(6, max(base, -math.floor(math.log10(size)) + 1))
    return base


def _fmt(value: float | None, decimals: int) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞"
    text = f"{value:.{decimals}f}"
    return text.replace("-", "−")


def _interval(est: float, lo: float, hi: float, d: int) -> str:
    d = _row(d, est)
    return f"{_fmt(est, d)} [{_fmt(lo, d)}, {_fmt(hi, d)}]"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _arm_text(effect: StudyEffect, arm: str) -> str:
    inp = effect.inputs
    if f"{arm}.events" in inp:
        return f"{inp[f'{arm}.events']:g}/{inp[f'{arm}.total']:g}"
    if f"{arm}.mean" in inp:
        return f"{inp[f'{arm}.mean']:.4g} ({inp[f'{arm}.sd']:.3g}) {inp[f'{arm}.n']:g}"
    return ""


def _short(text: str, limit: int = 42) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pooled_label(pooled: PooledEstimate, result: MetaAnalysis) -> str:
    if pooled.model == "fixed":
        return f"Common effect ({_METHOD_NAMES[pooled.method]})"
    extra = ", Hartung-Knapp" if pooled.distribution == "t" else ""
    return f"Random effects ({_METHOD_NAMES[pooled.method]}{extra})"


def _sources_json(effect: StudyEffect) -> list[dict[str, Any]]:
    out = []
    for field, provs in effect.sources.items():
        for prov in provs:
            out.append({"field": field, **prov.model_dump(exclude_none=True)})
    return out


def _study_title(effect: StudyEffect, weight: float, result: MetaAnalysis, d: int) -> str:
    lines = [f"{effect.label}: {result.measure} "
             f"{_interval(effect.display_estimate, effect.display_ci_lower, effect.display_ci_upper, d)}"
             f", weight {weight:.1f}%"]
    if effect.inputs:
        lines.append("Data: " + "; ".join(f"{k} = {v:g}" for k, v in effect.inputs.items()))
    lines.extend(f"Adjustment: {a}" for a in effect.adjustments)
    for field, provs in effect.sources.items():
        for prov in provs:
            text = prov.describe()
            if text:
                lines.append(f"{field}: {text}")
    if effect.record_id is not None:
        lines.append(f"Record: {effect.record_id}")
    return "\n".join(lines)


def _pooled_title(pooled: PooledEstimate, result: MetaAnalysis, d: int) -> str:
    lines = [f"{_pooled_label(pooled, result)}: {result.measure} "
             f"{_interval(pooled.display_estimate, pooled.display_ci_lower, pooled.display_ci_upper, d)}"
             f" from {len(pooled.weights)} studies; {_p(pooled.p_value)}"]
    if pooled.model == "random":
        lines.append(f"tau² = {pooled.tau2:.4g}")
        if pooled.display_prediction_lower is not None:
            dp = _row(d, pooled.display_estimate)
            lines.append(f"Prediction interval [{_fmt(pooled.display_prediction_lower, dp)}, "
                         f"{_fmt(pooled.display_prediction_upper, dp)}]")
    labels = {s.study_id: s.label for s in result.studies}
    lines.extend(f"{labels.get(w.study_id, w.study_id)}: weight {w.weight:.1f}%" for w in pooled.weights)
    lines.extend(pooled.notes)
    return "\n".join(lines)


def _heterogeneity_text(result: MetaAnalysis) -> str:
    h = result.heterogeneity
    if h.df == 0:
        return "Heterogeneity: not applicable (one study)"
    return (f"Heterogeneity: τ² = {h.tau2:.4g} ({h.tau2_method}); Q = {h.q:.2f}, df = {h.df} "
            f"({_p(h.p_value)}); I² = {h.i2:.0f}%")


def forest_plot(result: MetaAnalysis, path: str | Path | None = None, *,
                fmt: Literal["svg", "png"] | None = None, show: Literal["primary", "both"] = "primary",
                link_template: str | None = None, title: str | None = None, dpi: int = 150) -> bytes:
    """Draw a forest plot of ``result``; returns the file's bytes and writes them to ``path``.

    ``fmt`` defaults to the suffix of ``path`` (``.svg`` or ``.png``), else SVG. ``show="both"``
    draws the common-effect and the random-effects diamonds. ``link_template`` (SVG only) makes
    each study row a link, e.g. ``"/records/{record_id}"`` (fields: ``record_id``, ``study_id``).
    """
    if fmt is None:
        suffix = Path(path).suffix.lower().lstrip(".") if path is not None else "svg"
        if suffix not in ("svg", "png"):
            raise SynthesisError(f"cannot tell the plot format from {str(path)!r}; use .svg or .png")
        fmt = suffix  # type: ignore[assignment]
    if fmt not in ("svg", "png"):
        raise SynthesisError(f"unknown plot format {fmt!r}; use svg or png")
    with mpl.rc_context({"svg.hashsalt": "leads-forest", "svg.fonttype": "none",
                         "font.family": "DejaVu Sans", "font.size": 8.5}):
        fig = _draw(result, show=show, title=title)
        buffer = io.BytesIO()
        if fmt == "svg":
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "leads"})
            data = _annotate_svg(buffer.getvalue(), result, show=show, link_template=link_template)
        else:
            fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": "leads"})
            data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _pooled_rows(result: MetaAnalysis, show: str) -> list[PooledEstimate]:
    if show == "both":
        return [result.fixed, result.random]
    if show != "primary":
        raise SynthesisError(f"unknown show option {show!r}; use primary or both")
    return [result.primary]


def _draw(result: MetaAnalysis, *, show: str, title: str | None) -> Figure:
    pooled_rows = _pooled_rows(result, show)
    random_row = next((p for p in pooled_rows if p.model == "random"), None)
    has_pi = random_row is not None and random_row.prediction_lower is not None
    k = len(result.studies)
    # header, studies, gap, pooled rows, prediction row, heterogeneity, overall test
    n_rows = 1 + k + 1 + len(pooled_rows) + (1 if has_pi else 0) + 2
    top_in, bottom_in = (0.45 if title else 0.15), 0.55
    height = n_rows * _ROW_IN + top_in + bottom_in
    fig = Figure(figsize=(_WIDTH_IN, height))
    ax = fig.add_axes((_AX_LEFT, bottom_in / height, _AX_RIGHT - _AX_LEFT, n_rows * _ROW_IN / height))
    ax.set_ylim(-(n_rows - 0.5), 0.5)
    ax.yaxis.set_major_locator(NullLocator())
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.patch.set_visible(False)
    text_tf = blended_transform_factory(fig.transFigure, ax.transData)
    ratio = result.measure in RATIO_MEASURES
    d = _decimals(result)

    def put(x: float, y: float, text: str, gid: str | None = None, **kw: Any) -> None:
        t = fig.text(x, y, text, transform=text_tf, va="center", **kw)
        if gid:
            t.set_gid(gid)

    if title:
        fig.suptitle(title, x=_X_LABEL, ha="left", y=1 - 0.12 / height, fontsize=10, fontweight="bold")
    put(_X_LABEL, 0, "Study", fontweight="bold")
    put(_X_TREAT, 0, _short(result.treatment_label, 16), ha="right", fontweight="bold")
    put(_X_CTRL, 0, _short(result.control_label, 16), ha="right", fontweight="bold")
    put(_X_EST, 0, f"{result.measure} [{result.level:.0%} CI]", fontweight="bold")
    weight_header = "Weight" if show == "primary" else f"Weight ({_MODEL_SHORT[result.model]})"
    put(_X_WEIGHT, 0, weight_header, ha="right", fontweight="bold")

    primary_weights = {w.study_id: w.weight for w in result.primary.weights}
    wmax = max(primary_weights.values()) if primary_weights else 100.0
    values: list[float] = []
    for i, effect in enumerate(result.studies):
        y = -(i + 1)
        gid = f"leads-study-{i}"
        est, lo, hi = effect.display_estimate, effect.display_ci_lower, effect.display_ci_upper
        values += [lo, hi]
        (line,) = ax.plot([lo, hi], [y, y], color="black", lw=1.0, solid_capstyle="butt")
        line.set_gid(f"{gid}-ci")
        size = 3.0 + 9.0 * math.sqrt(primary_weights.get(effect.study_id, 0.0) / wmax)
        (point,) = ax.plot([est], [y], marker="s", markersize=size, color="#1f4e79", lw=0)
        point.set_gid(f"{gid}-point")
        put(_X_LABEL, y, _short(effect.label), f"{gid}-label")
        put(_X_TREAT, y, _arm_text(effect, "treatment"), f"{gid}-treatment", ha="right")
        put(_X_CTRL, y, _arm_text(effect, "control"), f"{gid}-control", ha="right")
        put(_X_EST, y, _interval(est, lo, hi, d), f"{gid}-estimate")
        put(_X_WEIGHT, y, f"{primary_weights.get(effect.study_id, 0.0):.1f}%", f"{gid}-weight", ha="right")

    y = -(k + 2)
    for pooled in pooled_rows:
        gid = f"leads-pooled-{pooled.model}"
        est, lo, hi = pooled.display_estimate, pooled.display_ci_lower, pooled.display_ci_upper
        values += [lo, hi]
        diamond = Polygon([(lo, y), (est, y + 0.32), (hi, y), (est, y - 0.32)], closed=True,
                          facecolor="#c00000" if pooled.model == "random" else "#404040",
                          edgecolor="black", lw=0.6)
        diamond.set_gid(f"{gid}-diamond")
        ax.add_patch(diamond)
        put(_X_LABEL, y, _pooled_label(pooled, result), f"{gid}-label", fontweight="bold")
        put(_X_EST, y, _interval(est, lo, hi, d), f"{gid}-estimate", fontweight="bold")
        put(_X_WEIGHT, y, "100.0%", f"{gid}-weight", ha="right", fontweight="bold")
        y -= 1
    if has_pi and random_row is not None:
        pi_lo, pi_hi = random_row.display_prediction_lower, random_row.display_prediction_upper
        assert pi_lo is not None and pi_hi is not None
        values += [pi_lo, pi_hi]
        (pi_line,) = ax.plot([pi_lo, pi_hi], [y, y], color="#c00000", lw=2.2, solid_capstyle="butt")
        pi_line.set_gid("leads-prediction-line")
        put(_X_LABEL, y, "Prediction interval", "leads-prediction-label")
        dp = _row(d, random_row.display_estimate)
        put(_X_EST, y, f"[{_fmt(pi_lo, dp)}, {_fmt(pi_hi, dp)}]", "leads-prediction-estimate")
        y -= 1
    put(_X_LABEL, y, _heterogeneity_text(result), "leads-heterogeneity", fontsize=7.5)
    y -= 1
    primary = result.primary
    stat = "t" if primary.distribution == "t" else "Z"
    put(_X_LABEL, y, f"Test for overall effect ({_MODEL_SHORT[primary.model]}): {stat} = "
        f"{_fmt(primary.statistic, 2)} "
        f"({_p(primary.p_value)})", "leads-overall-test", fontsize=7.5)

    null = 1.0 if ratio else 0.0
    finite = [v for v in values if math.isfinite(v)] + [null]
    if ratio:
        finite = [v for v in finite if v > 0]
        lo_lim, hi_lim = max(min(finite), 1e-3), min(max(finite), 1e3)
        span = math.log(hi_lim / lo_lim) or 1.0
        ax.set_xscale("log")
        ax.set_xlim(lo_lim * math.exp(-0.05 * span), hi_lim * math.exp(0.05 * span))
        ticks = [t for t in (0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 100, 1000)
                 if lo_lim * math.exp(-0.05 * span) <= t <= hi_lim * math.exp(0.05 * span)]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" for t in ticks])
    else:
        lo_lim, hi_lim = min(finite), max(finite)
        pad = 0.05 * ((hi_lim - lo_lim) or 1.0)
        ax.set_xlim(lo_lim - pad, hi_lim + pad)
    ax.plot([null, null], [-(k + 1.5 + len(pooled_rows)), 0.5], color="#808080", lw=0.8, zorder=0)
    ax.set_xlabel(MEASURE_NAMES[result.measure] + (" (log scale)" if ratio else ""))
    return fig


def _annotate_svg(svg: bytes, result: MetaAnalysis, *, show: str, link_template: str | None) -> bytes:
    root = ET.fromstring(svg)
    parents = {child: parent for parent in root.iter() for child in parent}
    by_prefix: dict[str, list[ET.Element]] = {}
    for element in root.iter():
        gid = element.get("id", "")
        if gid.startswith("leads-"):
            prefix = gid.rsplit("-", 1)[0]
            by_prefix.setdefault(prefix, []).append(element)
    found = root.find(f"{{{SVG_NS}}}g")
    container = found if found is not None else root
    d = _decimals(result)
    _pooled_rows(result, show)  # validates ``show``
    primary_weights = {w.study_id: w.weight for w in result.primary.weights}

    def gather(prefix: str, attrs: dict[str, str], title: str, href: str | None) -> None:
        group = ET.Element(f"{{{SVG_NS}}}g", attrs)
        title_el = ET.SubElement(group, f"{{{SVG_NS}}}title")
        title_el.text = title
        target = group
        if href:
            target = ET.SubElement(group, f"{{{SVG_NS}}}a", {f"{{{XLINK_NS}}}href": href, "href": href})
        for element in by_prefix.get(prefix, []):
            parents[element].remove(element)
            target.append(element)
        container.append(group)

    for i, effect in enumerate(result.studies):
        attrs = {
            "id": f"study-{i}", "class": "leads-study", "data-study-id": effect.study_id,
            "data-measure": result.measure,
            "data-estimate": repr(effect.display_estimate),
            "data-ci-lower": repr(effect.display_ci_lower),
            "data-ci-upper": repr(effect.display_ci_upper),
            "data-weight": repr(primary_weights.get(effect.study_id, 0.0)),
            "data-sources": json.dumps(_sources_json(effect), ensure_ascii=False, sort_keys=True),
        }
        if effect.record_id is not None:
            attrs["data-record-id"] = str(effect.record_id)
        href = None
        if link_template:
            try:
                href = link_template.format(record_id="" if effect.record_id is None else effect.record_id,
                                            study_id=effect.study_id)
            except (KeyError, IndexError) as exc:
                raise SynthesisError(f"link template {link_template!r} names an unknown field {exc}; "
                                     "use {record_id} and {study_id}") from None
        gather(f"leads-study-{i}", attrs,
               _study_title(effect, primary_weights.get(effect.study_id, 0.0), result, d), href)
    for pooled in _pooled_rows(result, show):
        attrs = {
            "id": f"pooled-{pooled.model}", "class": "leads-pooled", "data-model": pooled.model,
            "data-method": pooled.method, "data-measure": result.measure,
            "data-estimate": repr(pooled.display_estimate),
            "data-ci-lower": repr(pooled.display_ci_lower),
            "data-ci-upper": repr(pooled.display_ci_upper),
            "data-studies": json.dumps([{"study_id": w.study_id, "weight": w.weight} for w in pooled.weights]),
        }
        gather(f"leads-pooled-{pooled.model}", attrs, _pooled_title(pooled, result, d), None)
    if "leads-prediction" in by_prefix:
        gather("leads-prediction", {"id": "prediction-interval", "class": "leads-prediction"},
               "Prediction interval for the effect in a new study", None)
    for name in ("leads-heterogeneity", "leads-overall-test"):
        for element in root.iter():
            if element.get("id") == name:
                element.set("class", name)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
