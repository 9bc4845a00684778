"""Synthesis: effect sizes, meta-analysis, heterogeneity and forest plots.

A typical use::

    from leads.synthesis import load_input, meta_analysis, forest_plot

    data = load_input("mortality.csv")                 # or SynthesisInput(...), or study_from_results(...)
    result = meta_analysis(data, "RR", model="random", tau2_method="REML")
    print(result.random.display_estimate, result.heterogeneity.i2)
    forest_plot(result, "mortality.svg")                # rows link back to the quotes

Every value can carry :class:`Provenance` (record, extracted value, quote and offsets, model
call); effects keep it per input and pooled estimates list their studies and weights, so a number
on the plot can be followed back to the sentence it came from. See ``docs/synthesis.md``.
"""

# Names are loaded on first use: the command line imports this package, and the numerical
# stack (SciPy, statsmodels, matplotlib) takes seconds to load.
import importlib
from typing import Any

_LAZY = {
    "BinaryArm": "leads.synthesis.models",
    "BinaryStudy": "leads.synthesis.models",
    "ContinuousArm": "leads.synthesis.models",
    "ContinuousStudy": "leads.synthesis.models",
    "DataError": "leads.synthesis.models",
    "ExcludedStudy": "leads.synthesis.models",
    "GenericStudy": "leads.synthesis.models",
    "Heterogeneity": "leads.synthesis.models",
    "MetaAnalysis": "leads.synthesis.models",
    "PooledEstimate": "leads.synthesis.models",
    "Provenance": "leads.synthesis.models",
    "ReportedEffect": "leads.synthesis.models",
    "Study": "leads.synthesis.models",
    "StudyEffect": "leads.synthesis.models",
    "StudyWeight": "leads.synthesis.models",
    "SynthesisError": "leads.synthesis.models",
    "SynthesisInput": "leads.synthesis.models",
    "compute_effects": "leads.synthesis.effects",
    "forest_plot": "leads.synthesis.forest",
    "load_input": "leads.synthesis.adapters",
    "mantel_haenszel": "leads.synthesis.pooling",
    "meta_analysis": "leads.synthesis.pooling",
    "parse_mean_sd": "leads.synthesis.adapters",
    "pool_effects": "leads.synthesis.pooling",
    "study_effect": "leads.synthesis.effects",
    "study_from_extraction": "leads.synthesis.adapters",
    "study_from_results": "leads.synthesis.adapters",
    "tau2_estimate": "leads.synthesis.pooling",
}

__all__ = [
    "BinaryArm",
    "BinaryStudy",
    "ContinuousArm",
    "ContinuousStudy",
    "DataError",
    "ExcludedStudy",
    "GenericStudy",
    "Heterogeneity",
    "MetaAnalysis",
    "PooledEstimate",
    "Provenance",
    "ReportedEffect",
    "Study",
    "StudyEffect",
    "StudyWeight",
    "SynthesisError",
    "SynthesisInput",
    "compute_effects",
    "forest_plot",
    "load_input",
    "mantel_haenszel",
    "meta_analysis",
    "parse_mean_sd",
    "pool_effects",
    "study_effect",
    "study_from_extraction",
    "study_from_results",
    "tau2_estimate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'leads.synthesis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
