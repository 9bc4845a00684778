"""Benchmarks for the six tasks (search: :mod:`leads.eval.search`)."""

__all__: list[str] = []
