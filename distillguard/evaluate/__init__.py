"""Measure findings against ground-truth labels."""

__all__: list[str] = []
