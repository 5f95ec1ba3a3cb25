"""The account graph (shared templates, infrastructure) and its communities."""

from distillguard.linkage.account_graph import AccountGraph, GraphParams, build_account_graph
from distillguard.linkage.communities import leiden_communities
from distillguard.linkage.content_similarity import account_unit_matrix, content_neighbors
from distillguard.linkage.shared_values import shared_value_edges

__all__ = [
    "AccountGraph",
    "GraphParams",
    "account_unit_matrix",
    "build_account_graph",
    "content_neighbors",
    "leiden_communities",
    "shared_value_edges",
]
