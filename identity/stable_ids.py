"""Stable customer ids: which of this run's clusters keeps which previous customer id.

Overlap is counted in *source records* (channel + source record id), not identity records:
record keys can shift between runs (a record is keyed by its smallest source id), source
records do not.

- Every previous customer has one **heir**: the new cluster holding most of its source records
  (tie: the cluster whose smallest record key sorts first).
- A cluster that is the heir of one previous customer keeps its id (**unchanged**, or grown).
- A cluster that is the heir of several keeps the **oldest** id (first issued, from the id
  registry) and the others are **merged** into it.
- A cluster that is nobody's heir gets a **new id**; if it holds source records of previous
  customers, each of them is logged as **split** (the customer kept its id on its heir: the
  larger part). A minority of a customer's records that joined *another existing* customer is
  logged the same way, as a split whose `other_customer_id` is that customer.
- A previous customer none of whose source records is left is **retired** (its records were
  deleted or became unresolvable).
- New ids come from `identity.ids.new_customer_id`: never an id issued before, whatever its
  status now (active, merged, retired, erased).

Everything here is plain Python over small inputs (one overlap row per cluster and previous
customer), so it is the same for the full and the incremental run, and for both engines.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from identity.cluster import Edge, Refusal
from identity.ids import new_customer_id

EVENTS = ("merge", "split", "override_merge", "override_split")
MAX_EVIDENCE = 10  # links quoted per event


@dataclass(frozen=True)
class Overlap:
    cluster: str  # a new cluster, by its label (smallest member record key)
    previous: str  # a previous customer id
    rows: int  # that customer's source records now in this cluster


@dataclass
class IdChange:
    """One line of `identity.customer_id_history` (before evidence is attached)."""

    event: str
    customer_id: str  # merge: the id that survives; split: the customer that was split
    other_customer_id: str  # merge: the id merged away; split: the id that got the records
    source_records: int
    cluster: str  # merge: the cluster of both; split: the part that left
    kept_cluster: str | None = None  # split: the part that kept `customer_id`
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Assignment:
    ids: dict[str, str]  # cluster label -> customer id
    issued: list[tuple[str, str]]  # (new customer id, origin 'new' | 'split'), in issue order
    merged: dict[str, str]  # merged-away id -> id it was merged into
    retired: list[str]  # previous ids with no source record left
    changes: list[IdChange]

    @property
    def kept(self) -> int:
        """Clusters that kept a previous id."""
        return len(self.ids) - len(self.issued)


def assign_ids(clusters: Iterable[str], overlaps: Iterable[Overlap],
               previous: Collection[str], issue_order: Mapping[str, int],
               taken: Collection[str]) -> Assignment:
    """Customer ids for `clusters` given how their source records were spread over the
    `previous` customer ids (those in scope: every active id whose records this run re-decided).

    `issue_order` ranks ids by first issue (smaller is older); `taken` is every id that must
    never be issued again (the registry, erased ids)."""
    overlaps = [o for o in overlaps if o.rows > 0]
    by_previous: dict[str, list[Overlap]] = defaultdict(list)
    by_cluster: dict[str, list[Overlap]] = defaultdict(list)
    for o in overlaps:
        by_previous[o.previous].append(o)
        by_cluster[o.cluster].append(o)
    heir = {p: min(items, key=lambda o: (-o.rows, o.cluster)).cluster
            for p, items in by_previous.items()}
    claims: dict[str, list[str]] = defaultdict(list)
    for p, c in heir.items():
        claims[c].append(p)
    unavailable = set(taken)
    ids: dict[str, str] = {}
    issued: list[tuple[str, str]] = []
    merged: dict[str, str] = {}
    changes: list[IdChange] = []
    rows = {(o.cluster, o.previous): o.rows for o in overlaps}
    for cluster in sorted(clusters):
        claimants = sorted(claims.get(cluster, ()),
                           key=lambda p: (issue_order.get(p, math.inf), p))
        if claimants:
            keep = ids[cluster] = claimants[0]
            for other in claimants[1:]:
                merged[other] = keep
                changes.append(IdChange("merge", keep, other, rows[(cluster, other)], cluster))
        else:
            new = ids[cluster] = new_customer_id(cluster, unavailable)
            unavailable.add(new)
            issued.append((new, "split" if by_cluster.get(cluster) else "new"))
    for o in sorted(overlaps, key=lambda o: (o.previous, o.cluster)):
        if heir[o.previous] != o.cluster:
            changes.append(IdChange("split", o.previous, ids[o.cluster], o.rows, o.cluster,
                                    heir[o.previous]))
    retired = sorted(set(previous) - set(by_previous))
    return Assignment(ids, issued, merged, retired, changes)


def attach_evidence(changes: Sequence[IdChange], record_keys: Sequence[str],
                    record_cluster: Sequence[str], record_origin: Sequence[str | None],
                    edges: Sequence[Edge], refusals: Sequence[Refusal],
                    overrides: Mapping[str, Mapping[str, Any]],
                    ids: Mapping[str, str]) -> None:
    """Fill each change's evidence, and mark those a steward override caused.

    A merge quotes the accepted links (strongest first) between the merged-away customer's
    records and the rest of the cluster, and those through records new to this run; a split
    quotes the refused links between its two parts (with the guard that refused each), or
    says that no link joins them any more.
    `record_origin` is each record's previous customer (None for records new to this run);
    `edges` are every link the clustering considered, must-links included, strongest first."""
    merges = {(c.cluster, c.other_customer_id): c for c in changes
              if c.event == "merge"}
    splits = {frozenset((c.cluster, c.kept_cluster)): c for c in changes
              if c.event == "split" and c.kept_cluster is not None}
    refused = {id(r.edge) for r in refusals}
    merges_in: dict[str, list[IdChange]] = defaultdict(list)
    for (cluster, _), change in merges.items():
        merges_in[cluster].append(change)
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    override_ids: dict[int, set[str]] = defaultdict(set)
    if merges:
        for edge in edges:
            cluster = record_cluster[edge.left]
            if (cluster not in merges_in or record_cluster[edge.right] != cluster
                    or id(edge) in refused):
                continue
            origins = (record_origin[edge.left], record_origin[edge.right])
            if origins[0] == origins[1]:
                continue
            # links from the merged-away customer, and through records new to this run (a
            # new record bridging two customers is how most merges happen)
            if None in origins:
                concerned = merges_in[cluster]
            else:
                concerned = [merges[(cluster, o)] for o in origins if (cluster, o) in merges]
            for change in concerned:
                if edge.override_id:
                    override_ids[id(change)].add(edge.override_id)
                if len(found[id(change)]) < MAX_EVIDENCE:
                    found[id(change)].append(_link(record_keys, edge))
    if splits:
        for refusal in refusals:
            pair = frozenset((record_cluster[refusal.edge.left],
                              record_cluster[refusal.edge.right]))
            change = splits.get(pair)
            if change is None:
                continue
            if refusal.override_id:
                override_ids[id(change)].add(refusal.override_id)
            if len(found[id(change)]) < MAX_EVIDENCE:
                found[id(change)].append({**_link(record_keys, refusal.edge),
                                          "refused_by": refusal.guard})
    for change in changes:
        quoted = found.get(id(change), [])
        if change.event == "merge":
            change.evidence = {"links": quoted}
        else:
            change.evidence = {"refused_links": quoted,
                               "kept_by": ids.get(change.kept_cluster or "", None)}
            if not quoted:
                change.evidence["note"] = "no accepted link joins the two parts any more"
        if override_ids.get(id(change)):
            change.event = "override_" + change.event
            change.evidence["overrides"] = [
                {"override_id": oid, **{k: overrides.get(oid, {}).get(k)
                                        for k in ("kind", "author", "reason")}}
                for oid in sorted(override_ids[id(change)])]


def _link(record_keys: Sequence[str], edge: Edge) -> dict[str, Any]:
    link: dict[str, Any] = {"record_l": record_keys[edge.left],
                            "record_r": record_keys[edge.right], "link_type": edge.link_type}
    if edge.weight is not None:
        link["match_weight"] = round(edge.weight, 3)
    return link
