"""The detection policy (``verdict/data/policy.yaml``) as typed values.

Every value has a key in the file, and that key path (``campaign.min_owners``)
is the value's rule id: findings list the ids of the rules that fired
(``rules``), so each reason traces back to a line of the policy. A file of
one's own names only what it changes (it is merged over the packaged default,
key by key within each section). An unknown key, a value of the wrong type or
out of range, a missing or unreadable file, or text that is not YAML fails on
load with one line naming the file, the key and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from distillguard.linkage.account_graph import GraphParams
from distillguard.linkage.behavior_views import BEHAVIOR_VIEWS
from distillguard.linkage.candidates import SHARED_VALUE_FIELDS
from distillguard.linkage.operators import AttributionParams
from distillguard.signals.near_duplicates import SketchParams
from distillguard.validation import (
    Interval,
    MappingOf,
    Options,
    Section,
    merge_sections,
    read_rules_file,
    validate,
)

__all__ = ["POLICY_KEYS", "SCHEMA", "Policy", "load_policy", "rule_ids"]

_SHARE = Interval(float, 0, 1)
_COUNT = Interval(int, 1, None)

SCHEMA = Section({
    "version": Options((1,)),
    "sampling": Section({"per_account": _COUNT}),
    "near_duplicates": Section({"num_perm": Interval(int, 2, 256), "threshold": _SHARE,
                                "min_words": _COUNT, "seed": Interval(int, 0, None)}),
    "templates": Section({"min_owners": _COUNT, "min_texts": _COUNT,
                          "min_repeats_per_owner": Interval(float, 1, None),
                          "min_fresh_share": _SHARE}),
    "graph": Section({"candidate_min_template_requests": _COUNT,
                      "content_neighbors": _COUNT,
                      "content_min_cosine": _SHARE,
                      "shared_value_max_group": MappingOf(Options(SHARED_VALUE_FIELDS),
                                                          Interval(int, 0, None)),
                      "infra_edge_weight": Interval(float, 0, None),
                      "leiden_resolution": Interval(float, 0, None, closed="neither"),
                      "merge_min_cosine": _SHARE,
                      "behavior_weights": MappingOf(Options(BEHAVIOR_VIEWS),
                                                    Interval(float, 0, None)),
                      "wave_seconds": _COUNT,
                      "creation_batch_hours": Interval(float, 0, None, closed="neither"),
                      "model_share_step": Interval(float, 0, 1, closed="right"),
                      "model_share_min_requests": _COUNT,
                      "content_edge_floor": _SHARE,
                      "behavior_exponent": Interval(float, 0, None),
                      "behavior_candidates": Options((True, False)),
                      "infra_edge_weight_relative": Options((True, False)),
                      "edge_min_relative_weight": _SHARE,
                      "split_depth": Interval(int, 0, 3),
                      "merge_min_behavior_cosine": _SHARE,
                      "merge_min_behavior_ratio": Interval(float, 0, None)}),
    "attribution": Section({"min_agreement_ratio": Interval(float, 0, None),
                            "behavior_weights": MappingOf(Options(BEHAVIOR_VIEWS),
                                                          Interval(float, 0, None)),
                            "content_edge_floor": _SHARE,
                            "behavior_exponent": Interval(float, 0, None),
                            "behavior_candidates": Options((True, False)),
                            "edge_min_relative_weight": _SHARE,
                            "split_depth": Interval(int, 0, 3),
                            "veto_min_ratio": MappingOf(Options(BEHAVIOR_VIEWS),
                                                        Interval(float, 0, None)),
                            "support_min_ratio": MappingOf(Options(BEHAVIOR_VIEWS),
                                                           Interval(float, 0, None)),
                            "view_min_inside": _SHARE,
                            "view_min_shown_share": _SHARE,
                            "within_communities": Options((True, False))}),
    "campaign": Section({"unit_min_inside_share": _SHARE, "min_owners": _COUNT,
                         "min_template_share": _SHARE, "min_technique_share": _SHARE,
                         "owner_saturation": Interval(int, 2, None),
                         "min_operator_affinity": _SHARE}),
    "verdict": Section({"extraction_min_campaign_template_share": _SHARE,
                        "extraction_min_sampled_requests": _COUNT,
                        "extraction_min_behavior_affinity": _SHARE,
                        "extraction_min_content_affinity": _SHARE,
                        "extraction_min_behavior_affinity_content_agrees": _SHARE,
                        "technique_min_share": _SHARE}),
    "reasons": Section({"multi_turn_share_below": _SHARE,
                        "hours_active_at_least": Interval(int, 0, 24)}),
    "profile": Section({"max_indicators": Interval(int, 0, None),
                        "max_templates": Interval(int, 0, None),
                        "sample_prompts": Interval(int, 0, None),
                        "sample_prompt_chars": _COUNT}),
    "decisions": Section({"same_campaign_min_account_share": _SHARE,
                          "new_templates_min_share": _SHARE}),
})
"""What a policy file may hold; ``load_policy`` checks every file against it."""


@dataclass(frozen=True)
class Policy:
    sampling_per_account: int
    template_min_owners: int
    template_min_texts: int
    template_min_fresh_share: float
    template_min_repeats_per_owner: float
    candidate_min_template_requests: int
    graph: GraphParams
    sketch: SketchParams
    campaign_min_owners: int
    community_unit_min_inside_share: float
    campaign_min_template_share: float
    campaign_min_technique_share: float
    campaign_owner_saturation: int
    campaign_min_operator_affinity: float
    extraction_min_campaign_template_share: float
    extraction_min_sampled_requests: int
    extraction_min_behavior_affinity: float
    extraction_min_content_affinity: float
    extraction_min_behavior_affinity_content_agrees: float
    technique_min_share: float
    reason_multi_turn_share_below: float
    reason_hours_active_at_least: int
    profile_max_indicators: int
    profile_max_templates: int
    profile_sample_prompts: int
    profile_sample_prompt_chars: int
    attribution: AttributionParams = field(default_factory=AttributionParams)
    decisions_same_campaign_min_account_share: float = 0.5
    decisions_new_templates_min_share: float = 0.5


# Each ``Policy`` field (but ``graph`` and ``sketch``, whose fields are the keys of
# sections ``graph`` and ``near_duplicates``) and its key in the file: the id of the rule findings cite.
POLICY_KEYS = {
    "sampling_per_account": "sampling.per_account",
    "template_min_owners": "templates.min_owners",
    "template_min_texts": "templates.min_texts",
    "template_min_fresh_share": "templates.min_fresh_share",
    "template_min_repeats_per_owner": "templates.min_repeats_per_owner",
    "candidate_min_template_requests": "graph.candidate_min_template_requests",
    "campaign_min_owners": "campaign.min_owners",
    "community_unit_min_inside_share": "campaign.unit_min_inside_share",
    "campaign_min_template_share": "campaign.min_template_share",
    "campaign_min_technique_share": "campaign.min_technique_share",
    "campaign_owner_saturation": "campaign.owner_saturation",
    "campaign_min_operator_affinity": "campaign.min_operator_affinity",
    "extraction_min_campaign_template_share": "verdict.extraction_min_campaign_template_share",
    "extraction_min_sampled_requests": "verdict.extraction_min_sampled_requests",
    "extraction_min_behavior_affinity": "verdict.extraction_min_behavior_affinity",
    "extraction_min_content_affinity": "verdict.extraction_min_content_affinity",
    "extraction_min_behavior_affinity_content_agrees":
        "verdict.extraction_min_behavior_affinity_content_agrees",
    "technique_min_share": "verdict.technique_min_share",
    "reason_multi_turn_share_below": "reasons.multi_turn_share_below",
    "reason_hours_active_at_least": "reasons.hours_active_at_least",
    "profile_max_indicators": "profile.max_indicators",
    "profile_max_templates": "profile.max_templates",
    "profile_sample_prompts": "profile.sample_prompts",
    "profile_sample_prompt_chars": "profile.sample_prompt_chars",
    "decisions_same_campaign_min_account_share": "decisions.same_campaign_min_account_share",
    "decisions_new_templates_min_share": "decisions.new_templates_min_share",
}


def rule_ids(*names: str) -> tuple[str, ...]:
    """The rule ids (policy keys) of ``Policy`` fields.

    >>> rule_ids("campaign_min_owners", "technique_min_share")
    ('campaign.min_owners', 'verdict.technique_min_share')
    """
    return tuple(POLICY_KEYS[name] for name in names)


def _at(data: dict[str, Any], key: str) -> Any:
    section, name = key.split(".")
    return data[section][name]


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file over the packaged default (the default alone when ``path`` is
    None); ``RuleValidationError`` (one line: file, key, what is allowed) when it does
    not fit."""
    data, origin = read_rules_file(None, what="policy", package="distillguard.verdict",
                                   packaged="data/policy.yaml")
    if path is not None:
        own, origin = read_rules_file(path, what="policy", package="distillguard.verdict",
                                      packaged="data/policy.yaml")
        data = merge_sections(data, own)
    validate(data, SCHEMA, origin)
    graph = GraphParams(**{f.name: data["graph"][f.name] for f in fields(GraphParams)})
    sketch = SketchParams(**{f.name: data["near_duplicates"][f.name]
                             for f in fields(SketchParams)})
    attribution = AttributionParams(**{f.name: data["attribution"][f.name]
                                       for f in fields(AttributionParams)})
    return Policy(graph=graph, sketch=sketch, attribution=attribution,
                  **{name: _at(data, key) for name, key in POLICY_KEYS.items()})
