"""The account graph (shared templates, infrastructure) and its communities."""

from distillguard.linkage.account_graph import AccountGraph, GraphParams, build_account_graph
from distillguard.linkage.behavior_views import (
    BEHAVIOR_VIEWS,
    OPERATOR_VIEWS,
    AccountActivity,
    BehaviorViews,
    behavior_views,
)
from distillguard.linkage.candidates import (
    ACCOUNT_COMMUNITY_SCHEMA,
    ACCOUNT_EDGE_SCHEMA,
    CANDIDATE_ACTIVITY_SQL,
    CANDIDATE_COLUMNS,
    CANDIDATE_MODELS_SQL,
    COMMUNITY_UNITS_SCHEMA,
    SHARED_VALUE_FIELDS,
    behavior_affinities,
    behavior_parts,
    candidate_graph,
    candidate_ids,
    candidate_operators,
    candidate_unit_matrix,
    community_table,
    edge_table,
    graph_candidates,
    graph_membership,
)
from distillguard.linkage.communities import leiden_communities
from distillguard.linkage.content_similarity import (
    account_unit_matrix,
    content_neighbors,
    neighbors_and_pair_cosines,
)
from distillguard.linkage.operators import AttributionParams
from distillguard.linkage.shared_values import shared_value_edges

__all__ = [
    "ACCOUNT_COMMUNITY_SCHEMA",
    "ACCOUNT_EDGE_SCHEMA",
    "BEHAVIOR_VIEWS",
    "CANDIDATE_ACTIVITY_SQL",
    "CANDIDATE_COLUMNS",
    "CANDIDATE_MODELS_SQL",
    "COMMUNITY_UNITS_SCHEMA",
    "OPERATOR_VIEWS",
    "SHARED_VALUE_FIELDS",
    "AccountActivity",
    "AccountGraph",
    "AttributionParams",
    "BehaviorViews",
    "GraphParams",
    "account_unit_matrix",
    "behavior_affinities",
    "behavior_parts",
    "behavior_views",
    "build_account_graph",
    "candidate_graph",
    "candidate_ids",
    "candidate_operators",
    "candidate_unit_matrix",
    "community_table",
    "content_neighbors",
    "edge_table",
    "graph_candidates",
    "graph_membership",
    "leiden_communities",
    "neighbors_and_pair_cosines",
    "shared_value_edges",
]
