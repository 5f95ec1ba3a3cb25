"""Which accounts enter the account graph, and the graph built from their template use.

Pure functions over Arrow tables (no engine): the scan runs the SQL
(``template_sql.ACCOUNT_UNITS_SQL`` over the candidates this module picks) and
hands the results here.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from distillguard.linkage.account_graph import AccountGraph, GraphParams, build_account_graph
from distillguard.linkage.behavior_views import (
    CATEGORICAL_COLUMNS,
    AccountActivity,
    BehaviorViews,
    behavior_views,
)
from distillguard.linkage.content_similarity import account_unit_matrix
from distillguard.linkage.operators import AttributionParams, attribute_operators

__all__ = [
    "ACCOUNT_COMMUNITY_SCHEMA",
    "ACCOUNT_EDGE_SCHEMA",
    "CANDIDATE_ACTIVITY_SQL",
    "CANDIDATE_COLUMNS",
    "CANDIDATE_MODELS_SQL",
    "COMMUNITY_UNITS_SCHEMA",
    "SHARED_VALUE_FIELDS",
    "behavior_affinities",
    "behavior_parts",
    "candidate_behavior",
    "candidate_graph",
    "candidate_ids",
    "candidate_operators",
    "candidate_unit_matrix",
    "community_table",
    "edge_table",
    "graph_candidates",
    "graph_membership",
]

# Per-account infrastructure values that can link accounts (``GraphParams.shared_value_max_group``
# turns each on), in the order their edges enter the graph.
SHARED_VALUE_FIELDS = ("payment_fingerprint", "main_client_fingerprint", "main_ip")
# What ``graph_candidates`` reads per account.
# ``owner``: the organization, else the payment method, else the account itself.
CANDIDATE_COLUMNS = ("account_id", "owner", "sampled", "template_share", *SHARED_VALUE_FIELDS,
                     "account_created", "account_tier", "main_asn")
# Per candidate (its node number) and second: its sampled requests (the waves and days
# views). The second is floored: a cast would round in DuckDB and cut in Spark. Numbers
# only: at 16.2M exchanges this is millions of rows, held through the account graph.
CANDIDATE_ACTIVITY_SQL = """
SELECT c.node, CAST(floor(epoch(s.ts)) AS BIGINT) AS second, count(*) AS n
FROM signals s JOIN graph_candidates c USING (account_id)
GROUP BY ALL
"""
# Per candidate and model released while the log runs (after its first sampled
# request): the candidate's sampled requests since the release, and how many went
# to that model (the models view). A model released before the log began is
# everyone's routine: its share says nothing about who moved when.
CANDIDATE_MODELS_SQL = """
SELECT c.node, r.model, count(*) AS since_release,
       sum(CASE WHEN s.model = r.model THEN 1 ELSE 0 END) AS to_model
FROM signals s JOIN graph_candidates c USING (account_id)
JOIN releases r ON s.ts >= r.released_at
WHERE r.released_at > (SELECT min(ts) FROM signals)
GROUP BY ALL
"""
# Tables the linkage SQL reads: the accounts of communities that look like
# campaigns (``account_community``), and the units characteristic of them
# (``community_units``, built by ``COMMUNITY_UNITS_SQL``). Empty until linked.
ACCOUNT_COMMUNITY_SCHEMA = pa.schema([("account_id", pa.string()), ("community", pa.int64())])
COMMUNITY_UNITS_SCHEMA = pa.schema([("unit", pa.int64())])
# The account graph's edges (``edge_table``), kept for analysts: what ties two accounts.
ACCOUNT_EDGE_SCHEMA = pa.schema([("source", pa.string()), ("target", pa.string()),
                                 ("kind", pa.string()), ("weight", pa.float32())])


def graph_candidates(accounts: pa.Table, min_template_requests: int) -> pa.Table:
    """The rows of ``accounts`` (``CANDIDATE_COLUMNS``, any order of rows) with at
    least ``min_template_requests`` sampled requests on shared templates, sorted by
    account id: the graph's nodes come in this order, and Leiden's result depends on
    node order even with a fixed seed, so an engine's row order must not decide it.

    Entering the graph is no verdict: a candidate is listed only if it lands in
    a campaign and carries the campaign's templates.

    >>> t = pa.table({"account_id": ["a", "b"], "owner": ["a", "b"], "sampled": [10, 10],
    ...               "template_share": [0.3, 0.2],
    ...               "payment_fingerprint": [None, None], "main_client_fingerprint": [None, None],
    ...               "main_ip": [None, None], "account_created": [None, None],
    ...               "account_tier": ["pro", "pro"], "main_asn": [1, 2]})
    >>> graph_candidates(t, 3).column("account_id").to_pylist()
    ['a']
    """
    requests = pc.round(pc.multiply(accounts.column("template_share"),
                                    pc.cast(accounts.column("sampled"), pa.float64())),
                        round_mode="half_to_even")
    keep = pc.greater_equal(requests, min_template_requests)
    return accounts.select(list(CANDIDATE_COLUMNS)).filter(keep).sort_by("account_id")


def candidate_ids(candidates: pa.Table) -> pa.Table:
    """``account_id`` of the candidates and their ``node`` number (row): the table
    ``graph_candidates`` the SQL reads."""
    return pa.table({"account_id": candidates.column("account_id").cast(pa.string()),
                     "node": pa.array(np.arange(candidates.num_rows, dtype=np.int32))})


def candidate_activity(candidates: pa.Table, activity: pa.Table,
                       models: pa.Table | None = None) -> AccountActivity:
    """``AccountActivity`` of the candidates from the rows of ``CANDIDATE_ACTIVITY_SQL``
    and ``CANDIDATE_MODELS_SQL`` (``models``; None: no releases known)."""
    created = pc.cast(pc.cast(candidates.column("account_created"), pa.timestamp("us")),
                      pa.int64())
    activity_of = AccountActivity(
        account_pos=activity.column("node").to_numpy().astype(np.int64),
        seconds=activity.column("second").to_numpy().astype(np.int64),
        counts=activity.column("n").to_numpy().astype(np.float32),
        created=created.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6)
    if models is not None and models.num_rows:
        names = pc.cast(models.column("model"), pa.string()).combine_chunks()
        activity_of.model_account_pos = models.column("node").to_numpy().astype(np.int64)
        activity_of.model = pc.index_in(names, value_set=pc.unique(names).sort()) \
            .to_numpy(zero_copy_only=False).astype(np.int64)
        activity_of.since_release = models.column("since_release").to_numpy() \
            .astype(np.float32)
        activity_of.to_model = models.column("to_model").to_numpy().astype(np.float32)
    return activity_of


def _int32(column: pa.ChunkedArray) -> np.ndarray:
    """A column of 32-bit integers as numpy, read in place when it is one chunk."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return array.cast(pa.int32()).to_numpy(zero_copy_only=False)


def candidate_unit_matrix(candidates: pa.Table, unit_uses: pa.Table) -> sp.csr_matrix | None:
    """The candidates' template use: a row per candidate (``candidates``' order), a column
    per shared unit (``content_similarity.account_unit_matrix``); None without any.

    ``unit_uses`` holds ``node, col, n``: how many of a candidate's (``node``: its
    row in ``candidates``) sampled requests use each shared template unit (``col``:
    the unit's column number, ``UNIT_COLUMNS_SQL``) (``ACCOUNT_UNITS_SQL``). The
    graph needs only the matrix: at 15.6M exchanges the scan drops ``unit_uses``
    (hundreds of MB) before building it.
    """
    if not unit_uses.num_rows:
        return None
    account_pos, unit_pos, counts = (_int32(unit_uses.column(c)) for c in ("node", "col", "n"))
    sampled = np.maximum(candidates.column("sampled").to_numpy(), 1).astype(np.float32)
    return account_unit_matrix(account_pos, unit_pos, counts.astype(np.float32), sampled,
                               int(unit_pos.max()) + 1)


def candidate_graph(candidates: pa.Table, matrix: sp.csr_matrix | None, params: GraphParams,
                    activity: pa.Table | None = None, *, models: pa.Table | None = None,
                    threads: int = 1) -> AccountGraph:
    """Link ``candidates`` (from ``graph_candidates``) and find their communities.

    ``matrix``: their template use (``candidate_unit_matrix``); ``activity`` their
    sampled requests per second (``CANDIDATE_ACTIVITY_SQL``) and ``models`` their
    requests to each released model (``CANDIDATE_MODELS_SQL``), which with their
    creation, tier and infrastructure weighs the links by behavior
    (``behavior_views``); each account's behavior affinity is with the accounts of
    its community's other owners. Nodes are the candidates in their order.
    ``threads``: for the nearest-neighbour search (same result with any number).
    """
    accounts = candidates.column("account_id").to_pylist()
    shared = {name: candidates.column(name).to_pylist() for name in SHARED_VALUE_FIELDS}
    behavior = (candidate_behavior(candidates, activity, models, params)
                if activity is not None and params.behavior_weights else None)
    return build_account_graph(accounts, matrix, shared, params, behavior=behavior,
                               owners=candidates.column("owner").to_pylist(), threads=threads)


def candidate_behavior(candidates: pa.Table, activity: pa.Table, models: pa.Table | None,
                       params: GraphParams) -> BehaviorViews:
    """The candidates' behavior views weighed by ``params.behavior_weights``, from the rows
    of ``CANDIDATE_ACTIVITY_SQL`` and ``CANDIDATE_MODELS_SQL``."""
    return behavior_views(
        candidate_activity(candidates, activity, models),
        {c: candidates.column(c).to_pylist() for c in CATEGORICAL_COLUMNS},
        params.behavior_weights, wave_seconds=params.wave_seconds,
        creation_batch_hours=params.creation_batch_hours,
        model_share_step=params.model_share_step,
        model_share_min_requests=params.model_share_min_requests)


def _of_nodes(rows: pa.Table, nodes: np.ndarray, count: int) -> pa.Table:
    """The rows of ``rows`` (a ``node`` column among ``count`` candidates) of ``nodes``,
    each node renumbered by its position in ``nodes``."""
    position = np.full(count, -1, np.int64)
    position[nodes] = np.arange(len(nodes))
    new = position[rows.column("node").to_numpy()]
    keep = new >= 0
    return rows.filter(pa.array(keep)).set_column(
        rows.schema.get_field_index("node"), "node", pa.array(new[keep].astype(np.int32)))


def candidate_operators(candidates: pa.Table, matrix: sp.csr_matrix, graph: AccountGraph,
                        members: np.ndarray, activity: pa.Table, models: pa.Table | None,
                        params: AttributionParams, graph_params: GraphParams, *,
                        threads: int = 1) -> dict[str, int]:
    """Which operator runs each candidate of ``members`` (their node numbers: the accounts
    of communities that look like campaigns), as ``operators.attribute_operators``."""
    if not len(members) or params.min_agreement_ratio <= 0:
        return {}
    chosen = candidates.take(pa.array(members))
    n = candidates.num_rows
    behavior = candidate_behavior(
        chosen, _of_nodes(activity, members, n),
        None if models is None else _of_nodes(models, members, n),
        params.fragment_params(graph_params))
    accounts = chosen.column("account_id").to_pylist()
    operator = attribute_operators(accounts, matrix, behavior, graph.community[members],
                                   chosen.column("owner").to_pylist(), params, graph_params,
                                   threads=threads, matrix_rows=members)
    return dict(zip(accounts, operator.tolist(), strict=True))


def community_table(graph: AccountGraph, communities: set[int]) -> pa.Table:
    """The graph's accounts in ``communities`` (``ACCOUNT_COMMUNITY_SCHEMA``)."""
    keep = np.isin(graph.community, list(communities))
    return pa.table({
        "account_id": pa.array(graph.accounts, pa.string()).filter(pa.array(keep)),
        "community": pa.array(graph.community[keep], pa.int64())}, schema=ACCOUNT_COMMUNITY_SCHEMA)


def edge_table(graph: AccountGraph) -> pa.Table:
    """The graph's edges by account id (``ACCOUNT_EDGE_SCHEMA``): ``content`` (shared
    template units; weight the cosine) or the shared infrastructure field."""
    accounts = pa.array(graph.accounts, pa.string())
    return pa.table({"source": accounts.take(pa.array(graph.sources, pa.int64())),
                     "target": accounts.take(pa.array(graph.targets, pa.int64())),
                     "kind": pa.array(graph.kinds, pa.string()),
                     "weight": pa.array(graph.weights, pa.float32())}, schema=ACCOUNT_EDGE_SCHEMA)


def graph_membership(graph: AccountGraph) -> dict[str, tuple[int, float]]:
    """Each account's community and its affinity with it."""
    return {a: (int(c), float(f)) for a, c, f in
            zip(graph.accounts, graph.community, graph.affinity, strict=True)}


def behavior_affinities(graph: AccountGraph) -> dict[str, float]:
    """Each account's behavior affinity with its community (cosine of its behavior views
    with the rest of the community's; empty without behavior views)."""
    if graph.behavior_affinity is None:
        return {}
    return dict(zip(graph.accounts, graph.behavior_affinity.tolist(), strict=True))


def behavior_parts(graph: AccountGraph) -> dict[str, dict[str, float]]:
    """Each account's behavior affinity by view (the weighted parts that sum to it)."""
    return {a: {view: float(part[i]) for view, part in graph.behavior_parts.items()}
            for i, a in enumerate(graph.accounts)}
