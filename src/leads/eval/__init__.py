"""Evaluation of the six tasks (docs/evaluation.md): search (:mod:`leads.eval.search`), screening
(:mod:`leads.eval.screening`), characteristics, arms, participants and PICO, results, and the
regression check (:mod:`leads.eval.regression`); shared helpers in :mod:`leads.eval.common`."""

__all__: list[str] = []
