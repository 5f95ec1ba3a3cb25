"""Engines that run the pipeline: the embedded DuckDB store (default)."""

from distillguard.engines.duckdb_errors import map_duckdb_errors
from distillguard.engines.resources import DEFAULT_MEMORY, EngineResources
from distillguard.engines.store import ExchangeStore, IngestReport
from distillguard.engines.summary import store_summary

__all__ = ["DEFAULT_MEMORY", "EngineResources", "ExchangeStore", "IngestReport",
           "map_duckdb_errors", "store_summary"]
