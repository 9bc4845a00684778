"""The public Python API of leads.synthesis."""

from __future__ import annotations

import leads.synthesis as synthesis

EXPECTED = {
    "BinaryArm", "BinaryStudy", "ContinuousArm", "ContinuousStudy", "DataError", "ExcludedStudy",
    "GenericStudy", "Heterogeneity", "MetaAnalysis", "PooledEstimate", "Provenance", "ReportedEffect",
    "Study", "StudyEffect", "StudyWeight", "SynthesisError", "SynthesisInput", "compute_effects",
    "forest_plot", "load_input", "mantel_haenszel", "meta_analysis", "parse_mean_sd", "pool_effects",
    "study_effect", "study_from_extraction", "study_from_results", "tau2_estimate",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(synthesis.__all__) == EXPECTED
    assert sorted(synthesis.__all__) == synthesis.__all__
    for name in synthesis.__all__:
        assert getattr(synthesis, name) is not None


def test_errors_are_leads_errors() -> None:
    from leads.errors import LeadsError

    assert issubclass(synthesis.SynthesisError, LeadsError)
    assert issubclass(synthesis.DataError, synthesis.SynthesisError)
    error = synthesis.DataError("negative SD", study="Smith 2001", field="control.sd")
    assert str(error) == "study 'Smith 2001', field 'control.sd': negative SD"
