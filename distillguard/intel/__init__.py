"""Indicator sharing: STIX 2.1 bundles and TAXII 2.1."""

__all__: list[str] = []
