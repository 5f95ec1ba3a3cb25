"""Per-account behavioral features, as SQL text that an engine runs."""

__all__: list[str] = []
