"""Screening-prioritisation metrics from a screening order, and recall curves.

Every metric is computed over the records screened *after* the priors (the records whose labels
were given to the model before it ranked anything): priors count neither in ``N`` nor among the
relevant records, as in ASReview's simulation reports.

- **WSS@95** (Cohen et al. 2006, JAMIA 13:206): ``(N - n95) / N - 0.05`` where ``n95`` is the
  number of records screened when 95% of the relevant records (``ceil(0.95 R)``) were found.
- **recall@x%**: the fraction of relevant records among the first ``ceil(x N)`` screened.
- **screened fraction to 95% recall**: ``n95 / N``.
- **ATD**, average time to discovery (Ferdinands et al. 2023, Syst Rev 12:100): the mean, over
  relevant records, of the fraction of records screened when each was found (1-based position
  divided by ``N``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ScreeningMetrics",
    "plot_recall_curves",
    "recall_curve",
    "screening_metrics",
    "screening_positions",
]


@dataclass(frozen=True)
class ScreeningMetrics:
    n_records: int
    """Records screened after the priors (``N``)."""
    n_relevant: int
    """Relevant records among them (``R``)."""
    n_priors: int
    wss_95: float
    recall_at_10: float
    recall_at_25: float
    records_to_95: int
    """Records screened (after the priors) when 95% recall was reached."""
    screened_to_95: float
    """``records_to_95 / N``."""
    atd: float
    """Average time to discovery, as a fraction of ``N``."""
    records_to_100: int
    """Records screened when the last relevant record was found."""

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _labels_array(labels: Sequence[bool | int] | np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=bool)


def screening_positions(
    order: Iterable[int], labels: Sequence[bool | int] | np.ndarray, priors: Iterable[int] = ()
) -> tuple[np.ndarray, int]:
    """The labels of the non-prior records in screening order, and N.

    Records missing from ``order`` (a simulation that stopped after the last relevant record) are
    appended in id order, so a partial order is scored as if the rest were screened last.
    """
    y = _labels_array(labels)
    prior_set = {int(p) for p in priors}
    seen = np.zeros(len(y), dtype=bool)
    sequence: list[int] = []
    for raw in order:
        i = int(raw)
        if i < 0 or i >= len(y):
            raise ValueError(f"record id {i} is out of range (0..{len(y) - 1})")
        if seen[i]:
            raise ValueError(f"record id {i} appears twice in the order")
        seen[i] = True
        if i not in prior_set:
            sequence.append(i)
    sequence.extend(i for i in np.flatnonzero(~seen).tolist() if i not in prior_set)
    return y[np.asarray(sequence, dtype=int)] if sequence else np.zeros(0, dtype=bool), len(sequence)


def screening_metrics(
    order: Iterable[int], labels: Sequence[bool | int] | np.ndarray, priors: Iterable[int] = ()
) -> ScreeningMetrics:
    """WSS@95, recall@10%/25%, screened fraction to 95% recall and ATD of one screening order."""
    priors = list(priors)
    screened, n = screening_positions(order, labels, priors)
    r = int(screened.sum())
    if n == 0 or r == 0:
        nan = float("nan")
        return ScreeningMetrics(n, r, len(priors), nan, nan, nan, 0, nan, nan, 0)
    found_at = np.flatnonzero(screened) + 1  # 1-based positions of the relevant records
    target = math.ceil(0.95 * r - 1e-9)
    n95 = int(found_at[target - 1])
    cumulative = np.cumsum(screened)

    def recall_at(fraction: float) -> float:
        k = min(n, math.ceil(fraction * n - 1e-9))
        return float(cumulative[k - 1] / r) if k > 0 else 0.0

    return ScreeningMetrics(
        n_records=n,
        n_relevant=r,
        n_priors=len(priors),
        wss_95=(n - n95) / n - 0.05,
        recall_at_10=recall_at(0.10),
        recall_at_25=recall_at(0.25),
        records_to_95=n95,
        screened_to_95=n95 / n,
        atd=float(found_at.mean() / n),
        records_to_100=int(found_at[-1]),
    )


def recall_curve(
    order: Iterable[int], labels: Sequence[bool | int] | np.ndarray, priors: Iterable[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """(fraction screened, recall) after each screened record, starting at (0, 0)."""
    screened, n = screening_positions(order, labels, priors)
    r = max(int(screened.sum()), 1)
    x = np.arange(n + 1) / max(n, 1)
    y = np.concatenate([[0.0], np.cumsum(screened) / r])
    return x, y


def plot_recall_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Plot recall curves (with the random-screening diagonal) to a PNG or SVG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"{path}: the plot must be a .png or .svg file")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    try:
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="random")
        for label, (x, y) in curves.items():
            ax.plot(x, y, linewidth=1.5, label=label)
        ax.axhline(0.95, color="0.75", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("fraction of records screened")
        ax.set_ylabel("recall")
        if title:
            ax.set_title(title)
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150 if path.suffix.lower() == ".png" else None)
    finally:
        plt.close(fig)
    return path
