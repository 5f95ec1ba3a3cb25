"""Scores, campaigns, pivots and plain-word reasons: findings.json."""

__all__: list[str] = []
