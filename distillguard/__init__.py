"""distillguard: find and stop distillation attacks on LLM APIs."""

__version__ = "0.1.0"
