"""Indicator sharing: STIX 2.1 bundles and TAXII 2.1."""

from distillguard.intel.bundle_reader import ReceivedIntel, parse_bundle, read_bundle, read_bundles
from distillguard.intel.config import SECRET_ENV, IntelConfig, KeyedHasher, load_intel_config
from distillguard.intel.export import IndicatorStats, findings_to_bundle
from distillguard.intel.matching import IndicatorMatcher
from distillguard.intel.patterns import indicator_pattern, pattern_values
from distillguard.intel.taxii import PushReport, TaxiiTarget, pull_objects, push_objects
from distillguard.intel.validation import ValidationReport, validate_bundle_text

__all__ = [
    "SECRET_ENV",
    "IndicatorMatcher",
    "IndicatorStats",
    "IntelConfig",
    "KeyedHasher",
    "PushReport",
    "ReceivedIntel",
    "TaxiiTarget",
    "ValidationReport",
    "findings_to_bundle",
    "indicator_pattern",
    "load_intel_config",
    "parse_bundle",
    "pattern_values",
    "pull_objects",
    "push_objects",
    "read_bundle",
    "read_bundles",
    "validate_bundle_text",
]
