"""A stand-in model API for demos, tests and benchmarks (``distillguard upstream-replay``).

Not part of the gateway: it answers both model APIs with the corpora's reference
answers, so the gateway can be run and measured without a real model behind it.
"""

from distillguard.replay.app import replay_app
from distillguard.replay.corpus import ReplayCorpus
from distillguard.replay.server import run_replay

__all__ = ["ReplayCorpus", "replay_app", "run_replay"]
