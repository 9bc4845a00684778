"""Screening: per-criterion eligibility (classic engine), study design, sentence embeddings;
prioritisation (zero-shot ranking, active learning), stopping estimates, simulation and metrics.

The prioritisation names below are loaded on first use, so importing a submodule (the classic
engine imports :mod:`leads.screen.classic`) does not pull in scikit-learn and SciPy. The
simulation itself is ``leads.screen.simulate.simulate`` (a package attribute of that name would
be shadowed by the submodule).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # ranking
    "ActiveLearner": "leads.screen.ranking",
    "LearnerConfig": "leads.screen.ranking",
    "build_features": "leads.screen.ranking",
    "zero_shot_scores": "leads.screen.ranking",
    # stopping
    "ConsecutiveIrrelevant": "leads.screen.stopping",
    "HypergeometricStopping": "leads.screen.stopping",
    "StoppingEstimate": "leads.screen.stopping",
    "recall_estimate": "leads.screen.stopping",
    # simulation and metrics
    "SimulationResult": "leads.screen.simulate",
    "ScreeningMetrics": "leads.screen.metrics",
    "plot_recall_curves": "leads.screen.metrics",
    "screening_metrics": "leads.screen.metrics",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'leads.screen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
