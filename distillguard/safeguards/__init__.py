"""Output safeguards that make harvested answers less useful for training."""

__all__: list[str] = []
