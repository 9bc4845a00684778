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

from leads.synthesis.adapters import (
    load_input,
    parse_mean_sd,
    study_from_extraction,
    study_from_results,
)
from leads.synthesis.effects import compute_effects, study_effect
from leads.synthesis.forest import forest_plot
from leads.synthesis.models import (
    BinaryArm,
    BinaryStudy,
    ContinuousArm,
    ContinuousStudy,
    DataError,
    ExcludedStudy,
    GenericStudy,
    Heterogeneity,
    MetaAnalysis,
    PooledEstimate,
    Provenance,
    ReportedEffect,
    Study,
    StudyEffect,
    StudyWeight,
    SynthesisError,
    SynthesisInput,
)
from leads.synthesis.pooling import mantel_haenszel, meta_analysis, pool_effects, tau2_estimate

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
