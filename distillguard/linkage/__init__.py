"""The account graph (shared infrastructure, templates, lockstep timing) and its communities."""

__all__: list[str] = []
