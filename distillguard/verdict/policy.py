"""The detection policy (``verdict/data/policy.yaml``) as typed values."""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distillguard.errors import RuleValidationError
from distillguard.linkage.account_graph import GraphParams

__all__ = ["Policy", "load_policy"]


@dataclass(frozen=True)
class Policy:
    sampling_per_account: int
    template_min_owners: int
    template_min_texts: int
    template_min_fresh_share: float
    template_min_repeats_per_owner: float
    candidate_min_template_requests: int
    graph: GraphParams
    campaign_min_owners: int
    community_unit_min_inside_share: float
    campaign_min_template_share: float
    campaign_min_technique_share: float
    extraction_min_campaign_template_share: float
    technique_min_share: float


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    g, c, v = data["graph"], data["campaign"], data["verdict"]
    return {
        "sampling_per_account": data["sampling"]["per_account"],
        "template_min_owners": data["templates"]["min_owners"],
        "template_min_texts": data["templates"]["min_texts"],
        "template_min_fresh_share": data["templates"]["min_fresh_share"],
        "template_min_repeats_per_owner": data["templates"]["min_repeats_per_owner"],
        "candidate_min_template_requests": g["candidate_min_template_requests"],
        "graph": {f.name: g[f.name] for f in fields(GraphParams)},
        "campaign_min_owners": c["min_owners"],
        "community_unit_min_inside_share": c["unit_min_inside_share"],
        "campaign_min_template_share": c["min_template_share"],
        "campaign_min_technique_share": c["min_technique_share"],
        "extraction_min_campaign_template_share": v["extraction_min_campaign_template_share"],
        "technique_min_share": v["technique_min_share"],
    }


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file (the packaged default when ``path`` is None).

    Raises ``RuleValidationError`` naming what is missing or of the wrong type.
    """
    if path is None:
        text = resources.files("distillguard.verdict").joinpath("data/policy.yaml").read_text()
        origin = "(packaged default)"
    else:
        text = Path(path).read_text(encoding="utf-8")
        origin = str(path)
    try:
        values = _flatten(yaml.safe_load(text))
    except (KeyError, TypeError, yaml.YAMLError) as exc:
        msg = f"policy {origin} does not match the policy schema: {exc!r}"
        raise RuleValidationError(msg) from exc
    graph = values.pop("graph")
    _check_types(values, [f for f in fields(Policy) if f.name != "graph"], origin)
    _check_types(graph, fields(GraphParams), origin)
    return Policy(**values, graph=GraphParams(**graph))


def _check_types(values: dict[str, Any], expected_fields: Any, origin: str) -> None:
    for f in expected_fields:
        expected = {"int": int, "float": (int, float), "dict[str, int]": dict}[str(f.type)]
        if not isinstance(values[f.name], expected) or isinstance(values[f.name], bool):
            msg = f"policy {origin}: '{f.name}' must be {f.type}, got {values[f.name]!r}"
            raise RuleValidationError(msg)
