"""Guarded clustering: accepted links -> customers, refusing merges that chain different people.

Links are applied strongest first (deterministic rules on personal identifiers, then Splink links
by falling match weight). Each merge joins two clusters only if no guard objects:

- `loyalty_id` / `login_id`: both sides hold loyalty cards (or web/app accounts), none is shared,
  and they do not show the same birth date with a compatible name (a member who lost a card
  and re-enrolled does): two memberships or two accounts are two people unless shown otherwise;
- `birth_date`: both sides have birth dates and none is compatible (typing slips allowed);
- `first_name`: both sides have given names and none is compatible (nicknames, initials and
  near spellings allowed) -- households share surname, address, landline and sometimes email,
  twins even a birth date, but not a given name.

A record that carries only a name (no identifier, no birth date) never takes part in a merge
between others: after the main pass it joins the one customer it links to, or stays alone when
its links point to several (it must not bridge two customers).

Steward overrides (`identity.overrides`) win over all of this: a must-link edge is applied
first and bypasses the guards; a cannot-link pair is checked before every merge (must-links
included), so no path of links can ever put its two records in one customer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from identity.guards import birth_dates_compatible, names_compatible

GUARDS = ("loyalty_id", "login_id", "birth_date", "first_name")
ACCOUNT_GUARDS = ("loyalty_id", "login_id")
NAME_ONLY_GUARD = "name_only_bridge"
CANNOT_LINK_GUARD = "steward_cannot_link"
MUST_LINK = "steward_must_link"  # link type of a steward's must-link edge


@dataclass
class Facts:
    """What the guards know about each record (aligned lists, one entry per record)."""

    first_name: Sequence[str | None]
    last_name: Sequence[str | None]
    birth_date: Sequence[date | None]
    loyalty_id: Sequence[str | None]
    name_only: Sequence[bool]
    login_id: Sequence[str | None] | None = None


@dataclass
class Edge:
    left: int
    right: int
    link_type: str  # the rule's identifier kind, "splink", "splink_attach" or MUST_LINK
    weight: float | None = None  # Splink match weight (None for rules and overrides)
    override_id: str | None = None  # the steward override behind a MUST_LINK edge


@dataclass
class _State:
    # (first, last) name keys that can tell people apart: full given names, or initials when a
    # cluster has nothing better ("A" fits Ali and Ayşe, so it never outvotes a full name)
    names: set[tuple[str, str | None]] = field(default_factory=set)
    initials_only: bool = True
    dates: set[date] = field(default_factory=set)
    accounts: dict[str, set[str]] = field(default_factory=dict)  # kind -> loyalty ids, logins
    # (override id, side 0/1) of the cannot-link pairs with a record in this cluster
    apart: set[tuple[str, int]] = field(default_factory=set)

    def add_name(self, name: tuple[str, str | None]) -> None:
        full = any(len(t) > 1 for t in name[0].split())
        if full and self.initials_only:
            self.names.clear()
            self.initials_only = False
        if full or self.initials_only:
            self.names.add(name)

    def absorb(self, other: _State) -> None:
        for name in other.names:
            self.add_name(name)
        self.dates |= other.dates
        self.apart |= other.apart
        for kind, values in other.accounts.items():
            self.accounts.setdefault(kind, set()).update(values)


@dataclass
class Refusal:
    edge: Edge
    guard: str
    override_id: str | None = None  # the cannot-link override, when guard is CANNOT_LINK_GUARD


class GuardedClusters:
    """Union-find over record indices whose unions can be refused by guards."""

    def __init__(self, facts: Facts, guards: Iterable[str] = GUARDS,
                 cannot_links: Sequence[tuple[int, int, str]] = ()) -> None:
        self.facts = facts
        self.guards = tuple(guards)
        n = len(facts.first_name)
        self.parent = list(range(n))
        self.size = dict.fromkeys(range(n), 1)
        self.state: dict[int, _State] = {}
        for i in range(n):
            st = _State()
            if facts.first_name[i]:
                st.add_name((facts.first_name[i], facts.last_name[i]))
            if facts.birth_date[i]:
                st.dates.add(facts.birth_date[i])
            for kind, values in (("loyalty_id", facts.loyalty_id),
                                 ("login_id", facts.login_id)):
                if values is not None and values[i]:
                    st.accounts[kind] = {values[i]}
            self.state[i] = st
        for left, right, override_id in cannot_links:
            self.state[left].apart.add((override_id, 0))
            self.state[right].apart.add((override_id, 1))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def apart_by(self, a: int, b: int) -> str | None:
        """The cannot-link override that keeps the clusters of roots `a` and `b` apart, if any."""
        sa, sb = self.state[a], self.state[b]
        if not sa.apart or not sb.apart:
            return None
        return min((oid for oid, side in sa.apart if (oid, 1 - side) in sb.apart), default=None)

    def objection(self, a: int, b: int) -> str | None:
        """The first guard that refuses merging the clusters of roots `a` and `b`, if any."""
        if self.apart_by(a, b):
            return CANNOT_LINK_GUARD
        sa, sb = self.state[a], self.state[b]
        for kind in ACCOUNT_GUARDS:
            if kind in self.guards:
                ours, theirs = sa.accounts.get(kind), sb.accounts.get(kind)
                if ours and theirs and not (ours & theirs) and not self._same_member(sa, sb):
                    return kind
        if "birth_date" in self.guards and sa.dates and sb.dates and not any(
                birth_dates_compatible(x, y) for x in sa.dates for y in sb.dates):
            return "birth_date"
        if "first_name" in self.guards and sa.names and sb.names and not any(
                names_compatible(x, y) for x in sa.names for y in sb.names):
            return "first_name"
        return None

    @staticmethod
    def _same_member(sa: _State, sb: _State) -> bool:
        """Two cards (accounts), one person: a member who lost a card and signed up again gives
        the same birth date and a compatible name; different members sharing a surname do not."""
        return bool(sa.dates & sb.dates) and any(
            names_compatible(x, y) for x in sa.names for y in sb.names)

    def union(self, a: int, b: int) -> None:
        if self.size[a] < self.size[b]:  # union by size keeps the trees shallow
            a, b = b, a
        self.size[a] += self.size.pop(b)
        self.parent[b] = a
        self.state[a].absorb(self.state.pop(b))

    def try_merge(self, edge: Edge) -> Refusal | None:
        """Merge the clusters of an edge's records unless a guard objects (only a cannot-link
        override can object to a steward's must-link); returns the refusal."""
        a, b = self.find(edge.left), self.find(edge.right)
        if a == b:
            return None
        override = self.apart_by(a, b)
        if override:
            return Refusal(edge, CANNOT_LINK_GUARD, override)
        guard = None if edge.link_type == MUST_LINK else self.objection(a, b)
        if guard is None:
            self.union(a, b)
            return None
        return Refusal(edge, guard)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector; reference counting still frees memory.

    Clustering builds a few small containers per record and per link (states, edges, index
    entries) that live until it ends, and each collection traverses every one of them: at 1M
    source records that was 6 of the cluster phase's 10.6 s. They form no reference cycles,
    so there is nothing for the collector to find meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def cluster_records(facts: Facts, edges: Sequence[Edge], guards: Iterable[str] = GUARDS,
                    attach_edges: Sequence[Edge] = (), must_edges: Sequence[Edge] = (),
                    cannot_links: Sequence[tuple[int, int, str]] = (),
                    ) -> tuple[list[int], list[Refusal]]:
    """Cluster root for each record, and every link a guard refused.

    `edges` must already be in order of strength (strongest first). `attach_edges` are weaker
    links (below the match threshold): they never merge two customers, but a record left alone
    after all merges joins the one customer its weak links point to, if they point to only one.
    `must_edges` (link type MUST_LINK) are applied first, past the guards; `cannot_links`
    (record, record, override id) are never put in one customer, whatever links them.
    """
    uf = GuardedClusters(facts, guards, cannot_links)
    refusals: list[Refusal] = []
    for edge in must_edges:
        if refusal := uf.try_merge(edge):
            refusals.append(refusal)
    name_only = facts.name_only
    deferred: dict[int, list[Edge]] = {}
    for edge in edges:
        lone = [i for i in (edge.left, edge.right) if name_only[i]]
        if lone:
            # name-only records wait until the customers they could join are known
            for i in lone:
                deferred.setdefault(i, []).append(edge)
            continue
        if refusal := uf.try_merge(edge):
            refusals.append(refusal)
    for record, record_edges in deferred.items():
        targets: dict[int, Edge] = {}
        for edge in record_edges:
            other = edge.right if edge.left == record else edge.left
            if name_only[other]:
                continue
            targets.setdefault(uf.find(other), edge)
        if len(targets) == 1:
            (edge,) = targets.values()
            if refusal := uf.try_merge(edge):
                refusals.append(refusal)
        elif len(targets) > 1:
            refusals.extend(Refusal(e, NAME_ONLY_GUARD) for e in targets.values())
    _attach_lone_records(uf, attach_edges, refusals)
    return [uf.find(i) for i in range(len(facts.first_name))], refusals


def _attach_lone_records(uf: GuardedClusters, edges: Sequence[Edge],
                         refusals: list[Refusal]) -> None:
    by_record: dict[int, list[Edge]] = {}
    for edge in edges:
        for i in (edge.left, edge.right):
            if uf.size[uf.find(i)] == 1:
                by_record.setdefault(i, []).append(edge)
    for record in sorted(by_record):
        if uf.size[uf.find(record)] != 1:  # joined meanwhile
            continue
        targets: dict[int, Edge] = {}
        for edge in by_record[record]:
            other = edge.right if edge.left == record else edge.left
            if uf.size[uf.find(other)] > 1:  # join a customer, never pair two loners
                targets.setdefault(uf.find(other), edge)
        if len(targets) == 1:
            (edge,) = targets.values()
            if refusal := uf.try_merge(edge):
                refusals.append(refusal)
