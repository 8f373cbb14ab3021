"""Figures about the simulated population that make the marketing use cases checkable."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from cdp.generate.activity import TIERS, Plan
from cdp.generate.population import Person


class Stats:
    """Accumulates per-person facts while the population streams past."""

    def __init__(self, as_of: dt.date) -> None:
        self.as_of = dt.datetime.combine(as_of, dt.time())
        self.segments: Counter[str] = Counter()
        self.spend: dict[str, list[float]] = {"single": [0.0, 0], "omni": [0.0, 0]}
        self.lapsed = 0
        self.buyers = 0
        self.recent_abandoned = 0
        self.near_tier = 0
        self.members = 0
        self.moved = 0
        self.changed_email = 0
        self.family_email = 0
        self.tiers: Counter[str] = Counter()
        self.tablet_users = 0

    def add_person(self, person: Person, plan: Plan) -> None:
        self.segments[plan.segment] += 1
        self.moved += person.moved is not None
        self.changed_email += person.email_changed is not None
        self.family_email += person.family_email is not None
        self.tablet_users += plan.tablet is not None
        if plan.orders:
            self.buyers += 1
            kind = "omni" if len(plan.channels) > 1 else "single"
            self.spend[kind][0] += sum(o.amount for o in plan.orders)
            self.spend[kind][1] += 1
            if max(o.at for o in plan.orders) < self.as_of - dt.timedelta(days=90):
                self.lapsed += 1
        week_ago = self.as_of - dt.timedelta(days=7)
        self.recent_abandoned += any(
            c.status != "converted" and c.updated_at >= week_ago for c in plan.carts)
        if plan.memberships:
            self.members += 1
            points = plan.memberships[-1].points
            self.tiers[plan.memberships[-1].tier] += 1
            self.near_tier += any(0.9 * floor <= points < floor for _, floor in TIERS[1:])

    def figures(self) -> dict[str, Any]:
        single_total, single_n = self.spend["single"]
        omni_total, omni_n = self.spend["omni"]
        ratio = None
        if single_n and omni_n:
            ratio = round((omni_total / omni_n) / (single_total / single_n), 2)
        return {
            "segments": dict(sorted(self.segments.items())),
            "buyers": self.buyers,
            "lapsed_buyers": self.lapsed,
            "omnichannel_spend_ratio": ratio,
            "people_with_recent_abandoned_cart": self.recent_abandoned,
            "loyalty_members": self.members,
            "loyalty_near_next_tier": self.near_tier,
            "loyalty_tiers": {name: self.tiers[name] for name, _ in TIERS},
            "people_moved": self.moved,
            "people_changed_email": self.changed_email,
            "people_with_family_email": self.family_email,
            "people_with_family_tablet": self.tablet_users,
        }
