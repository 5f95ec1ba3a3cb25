"""Per-exchange content signals: pure functions over Arrow batches."""

__all__: list[str] = []
