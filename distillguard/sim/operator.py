"""An operator that attacks several providers: two simulations that share it.

Threat intelligence is only worth something if what one provider saw shows up
at another. ``SharedOperator`` makes one campaign of a scenario the same
operator in every simulation given the same ``seed`` (whatever the scenario
seed): its pipelines (the re-worded template variants, when the ``templates``
knob is on; verbatim corpora are the same anyway) and a share of its
infrastructure (the address blocks, proxy pools or residential exits of
``infra_share`` of its groups, and their custom client) are drawn from
generators seeded by the operator, not by the provider, and so are its traits
(its residential-IP vendor's country mix, the ordinary clients its automation
passes for). Accounts, volumes,
timing and payment methods stay the provider's own: an operator opens new
accounts with each provider and pays each through its processor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from distillguard.errors import InputError
from distillguard.sim.accounts import BuildContext

__all__ = ["SharedOperator"]


@dataclass
class SharedOperator:
    """``campaign``: the scenario's campaign this operator runs; ``seed``: the operator's."""

    campaign: str
    seed: int
    infra_share: float = 0.5
    _networks_rng: np.random.Generator = field(init=False, repr=False)
    _clients_rng: np.random.Generator = field(init=False, repr=False)
    _draw_rng: np.random.Generator = field(init=False, repr=False)
    _groups_rng: np.random.Generator = field(init=False, repr=False)
    _traits_rng: np.random.Generator = field(init=False, repr=False)
    _prefixes: dict[int, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.infra_share <= 1:
            msg = f"the operator's infrastructure share must be in [0, 1], got {self.infra_share}"
            raise InputError(msg)
        self._networks_rng = np.random.default_rng([self.seed, 3])
        self._clients_rng = np.random.default_rng([self.seed, 4])
        self._draw_rng = np.random.default_rng([self.seed, 2])
        self._groups_rng = np.random.default_rng([self.seed, 6])
        self._traits_rng = np.random.default_rng([self.seed, 7])

    def pipelines_rng(self) -> np.random.Generator:
        """The generator the attack pools are re-worded with (same pipelines everywhere)."""
        return np.random.default_rng([self.seed, 1])

    @contextlib.contextmanager
    def traits(self, ctx: BuildContext) -> Iterator[None]:
        """Around the draws of what the operator is with every provider (its proxy vendor's
        country mix, the ordinary clients its automation passes for)."""
        networks, clients = ctx.networks, ctx.clients
        saved = (networks.rng, clients.rng)
        networks.rng = clients.rng = self._traits_rng
        try:
            yield
        finally:
            networks.rng, clients.rng = saved

    @contextlib.contextmanager
    def group_infrastructure(self, ctx: BuildContext) -> Iterator[bool]:
        """Around the infrastructure draws of one group: for a shared group, addresses
        (their prefixes too) and clients come from the operator's generators. Yields
        whether the group is shared."""
        shared = bool(self._groups_rng.random() < self.infra_share)
        if not shared:
            yield False
            return
        networks, clients = ctx.networks, ctx.clients
        saved = (ctx.rng, networks.rng, networks._prefixes, clients.rng)
        ctx.rng, networks.rng, clients.rng = self._draw_rng, self._networks_rng, self._clients_rng
        networks._prefixes = self._prefixes
        try:
            yield True
        finally:
            ctx.rng, networks.rng, networks._prefixes, clients.rng = saved
