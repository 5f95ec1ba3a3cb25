"""The analysts' web view of findings."""

__all__: list[str] = []
