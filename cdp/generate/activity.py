"""What each person does: which channels they use, their orders, app sessions, carts, loyalty
membership, subscriptions, calls and consents.

This is the marketing side of the demo: store-only shoppers, web-only and app-only buyers,
omnichannel buyers (who spend about 1.7x a single-channel buyer), lapsed customers (last purchase
more than 90 days before `as_of`), engaged non-buyers, abandoned carts in the last days, loyalty
members close to the next tier, consent opt-ins and opt-outs. All dates fall in the event window
before `as_of`; nothing happens on or after it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass, field

from cdp.generate.ids import OpaqueIds
from cdp.generate.locales import BASKET_MEDIAN, LocaleData
from cdp.generate.population import Person

CATEGORIES = {  # category: (popularity, price factor)
    "womenswear": (20, 1.0), "menswear": (14, 1.0), "shoes": (12, 1.2), "kids": (10, 0.7),
    "beauty": (12, 0.5), "accessories": (9, 0.6), "home": (10, 1.3), "sports": (8, 1.1),
    "electronics": (5, 2.6),
}
SEGMENTS = {"store_only": 22, "web_only": 14, "app_only": 8, "omnichannel": 22, "prospect": 34}
OMNI_MIXES = {("web", "store"): 35, ("app", "store"): 20, ("web", "app"): 20,
              ("web", "app", "store"): 25}
TIERS = (("bronze", 0), ("silver", 1000), ("gold", 2500), ("platinum", 5000))
# Online activity by hour of day: evenings busiest, nights quiet (cumulative weights).
_HOURS = range(24)
_ONLINE_HOURS = list(itertools.accumulate(
    [1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 6, 7, 8, 10, 11, 11, 8, 4]))
LOYALTY_SHARE = {"store_only": 0.5, "omnichannel": 0.55, "web_only": 0.15, "app_only": 0.15,
                 "prospect": 0.04}


@dataclass(slots=True)
class Order:
    order_id: str
    channel: str  # web | app | store
    at: dt.datetime
    amount: float
    items: int
    category: str
    store: str | None = None  # POS store, or pickup store for click & collect
    fulfilment: str = "home_delivery"
    logged_in: bool = True


@dataclass(slots=True)
class Device:
    device_id: str
    platform: str
    since: dt.datetime
    push_opt_in: bool


@dataclass(slots=True)
class Membership:
    member_id: str
    card_number: str
    joined_at: dt.datetime
    home_store: str
    tier: str = "bronze"
    points: int = 0
    until: dt.datetime | None = None  # card replaced (lost card, signed up again) at this time


@dataclass(slots=True)
class Cart:
    cart_id: str
    channel: str  # web | app
    created_at: dt.datetime
    updated_at: dt.datetime
    status: str  # open | checkout | converted
    items: int
    value: float
    category: str
    order_id: str | None = None
    device: Device | None = None
    logged_in: bool = True


@dataclass(slots=True)
class Plan:
    segment: str
    lapsed: bool
    first_seen: dt.datetime
    last_seen: dt.datetime
    categories: list[str]
    email_opt_in: bool
    sms_opt_in: bool
    ads_opt_in: bool
    account_id: str | None = None
    orders: list[Order] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    tablet: Device | None = None  # shared with the household
    memberships: list[Membership] = field(default_factory=list)
    carts: list[Cart] = field(default_factory=list)
    app_sessions: int = 0
    email_subscriber: bool = False
    sms_contact: bool = False
    tickets: int = 0
    ticket_modes: tuple[str, ...] = ("phone",)

    @property
    def channels(self) -> set[str]:
        return {o.channel for o in self.orders}

    def membership_at(self, when: dt.datetime) -> Membership | None:
        for m in self.memberships:
            if m.joined_at <= when and (m.until is None or when < m.until):
                return m
        return None


class Planner:
    """Decides the behaviour of each person; owns the id sequences shared across channels."""

    def __init__(self, data: LocaleData, rng: random.Random, noise: float, as_of: dt.date,
                 window_days: int, seed: int) -> None:
        self.data = data
        self.rng = rng
        self.noise = max(0.0, noise)
        self.end = dt.datetime.combine(as_of, dt.time())  # exclusive: nothing at or after
        self.start = self.end - dt.timedelta(days=window_days)
        self.window_days = window_days
        self.basket = BASKET_MEDIAN.get(data.currency, 50.0)
        self.stores = _stores(data)
        self.stores_by_city: dict[str, list[str]] = {}
        for code, city in self.stores:
            self.stores_by_city.setdefault(city, []).append(code)
        salt = seed % 9973
        self.ids = {
            "web": OpaqueIds("W", 10, salt + 1), "app": OpaqueIds("A", 10, salt + 2),
            "store": OpaqueIds("T", 11, salt + 3), "account": OpaqueIds("U", 9, salt + 4),
            "member": OpaqueIds("LM", 9, salt + 5), "card": OpaqueIds("6035", 12, salt + 6),
            "cart": OpaqueIds("CRT", 10, salt + 7),
        }
        self._tablets: dict[int, Device | None] = {}
        self._categories = list(CATEGORIES)
        self._category_weights = [w for w, _ in CATEGORIES.values()]

    # --- helpers ----------------------------------------------------------------------------
    def moment(self, lo: dt.datetime, hi: dt.datetime, hours: tuple[int, int] = (0, 24)) -> (
            dt.datetime):
        """A random minute between lo and hi, on a day in range and at an hour in `hours`."""
        hi = min(hi, self.end - dt.timedelta(minutes=1))
        lo = min(lo, hi)
        days = (hi.date() - lo.date()).days
        for _ in range(10):
            day = lo.date() + dt.timedelta(days=self.rng.randint(0, days))
            hour = self._hour(hours)
            at = dt.datetime.combine(day, dt.time(hour, self.rng.randrange(60),
                                                  self.rng.randrange(60)))
            if lo <= at <= hi:
                return at
        return hi

    def _hour(self, hours: tuple[int, int]) -> int:
        lo, hi = hours
        if (lo, hi) == (0, 24):  # online: evenings busiest, nights quiet
            return self.rng.choices(_HOURS, cum_weights=_ONLINE_HOURS)[0]
        return self.rng.randrange(lo, hi)

    def category(self, plan: Plan) -> str:
        if self.rng.random() < 0.7:
            return self.rng.choice(plan.categories)
        return self.rng.choices(self._categories, weights=self._category_weights)[0]

    def amount(self, factor: float, category: str) -> float:
        price = CATEGORIES[category][1]
        value = self.basket * factor * price * math.exp(self.rng.gauss(0, 0.35))
        return round(max(value, self.basket * 0.05), 2)

    def home_store(self, person: Person) -> str:
        local = self.stores_by_city.get(person.address.city)
        return self.rng.choice(local) if local else self.rng.choice(self.stores)[0]

    # --- the plan ---------------------------------------------------------------------------
    def plan(self, person: Person) -> Plan:
        rng = self.rng
        segment = rng.choices(list(SEGMENTS), weights=list(SEGMENTS.values()))[0]
        buyer = segment != "prospect"
        lapsed = buyer and rng.random() < 0.25
        if lapsed:  # last purchase more than 90 days before as_of
            first_seen = self.start + dt.timedelta(days=rng.randint(0, self.window_days - 150))
            last_seen = self.end - dt.timedelta(days=rng.randint(95, 1 + (
                self.end - first_seen).days - 30))
        else:
            first_seen = self.start + dt.timedelta(days=rng.randint(0, self.window_days - 20))
            last_seen = self.end - dt.timedelta(days=rng.randint(1, 60))
        last_seen = max(last_seen, first_seen + dt.timedelta(days=1))
        favourite = rng.choices(self._categories, weights=self._category_weights, k=2)
        plan = Plan(
            segment=segment, lapsed=lapsed, first_seen=first_seen, last_seen=last_seen,
            categories=list(dict.fromkeys(favourite)),
            email_opt_in=rng.random() < 0.62, sms_opt_in=rng.random() < 0.5,
            ads_opt_in=rng.random() < 0.45,
        )
        order_channels = self._order_channels(segment)
        uses_app = "app" in order_channels or (segment == "prospect" and rng.random() < 0.2)
        registered_web = "web" in order_channels or (segment == "prospect" and rng.random() < 0.15)
        if uses_app or (registered_web and rng.random() < 0.85):
            plan.account_id = self.ids["account"].next()
        if uses_app:
            self._devices(plan)
            self.family_tablet(person, plan)
            plan.app_sessions = rng.randint(1, 9) if buyer else rng.randint(1, 5)
        self._orders(person, plan, order_channels)
        # Omnichannel shoppers who also visit stores are the loyal core: most carry the card
        # (scanned at the till, shown in the app), which is what ties store and online together.
        loyalty_share = 0.8 if len(order_channels) > 1 and "store" in order_channels else (
            LOYALTY_SHARE[segment])
        if rng.random() < loyalty_share:
            self._loyalty(person, plan)
        self._carts(plan, uses_app, registered_web)
        self._contact_lists(plan, buyer)
        return plan

    def _contact_lists(self, plan: Plan, buyer: bool) -> None:
        """Email and SMS lists are fed by the channels where people leave that address or
        number (web shop, app login, loyalty sign-up, store receipts), so a subscriber is
        almost always findable elsewhere; a person known to nothing else may still subscribe."""
        rng = self.rng
        gives_email = plan.account_id is not None or bool(plan.memberships) or any(
            o.channel == "web" for o in plan.orders)
        gives_phone = bool(plan.memberships) or any(o.channel in ("web", "store")
                                                    for o in plan.orders)
        unknown = not (plan.orders or plan.devices or plan.memberships or plan.carts)
        if gives_email or unknown:
            plan.email_subscriber = rng.random() < (0.55 if buyer else 0.42)
        if gives_phone or (unknown and not plan.email_subscriber):
            plan.sms_contact = rng.random() < (0.6 if plan.memberships else 0.3 if buyer
                                               else 0.12)
        if rng.random() < (0.14 if buyer else 0.05):
            plan.tickets = rng.choices((1, 2, 3), weights=(70, 22, 8))[0]
            # Chat needs an email the brand knows; a call shows the caller's number.
            plan.ticket_modes = ("chat", "phone") if gives_email and gives_phone else (
                ("chat",) if gives_email or plan.email_subscriber else ("phone",))

    def _order_channels(self, segment: str) -> tuple[str, ...]:
        if segment == "omnichannel":
            return self.rng.choices(list(OMNI_MIXES), weights=list(OMNI_MIXES.values()))[0]
        return {"store_only": ("store",), "web_only": ("web",), "app_only": ("app",)}.get(
            segment, ())

    def _orders(self, person: Person, plan: Plan, channels: tuple[str, ...]) -> None:
        if not channels:
            return
        rng = self.rng
        omni = len(channels) > 1
        # Omnichannel buyers buy more often and a bit more per basket (x1.15): ~1.7x spend.
        count = 1 + _geometric(rng, 0.42)
        if omni:
            count = max(len(channels), round(count * 1.3 + rng.random() - 0.1))
        factor = math.exp(rng.gauss(0, 0.45)) * (1.15 if omni else 1.0)
        picks = list(channels) + [rng.choice(channels) for _ in range(count - len(channels))]
        home = self.home_store(person)
        timed = sorted((self.moment(plan.first_seen, plan.last_seen,
                                    (10, 22) if ch == "store" else (0, 24)), ch) for ch in picks)
        # The last order is on the last active day, so recency (and lapsing) is as planned.
        at, channel = timed[-1]
        last_day = dt.datetime.combine(plan.last_seen.date(), at.time())
        timed[-1] = (min(max(at, last_day), self.end - dt.timedelta(minutes=1)), channel)
        for at, channel in timed:
            category = self.category(plan)
            order = Order(
                order_id=self.ids[channel].next(), channel=channel, at=at,
                amount=self.amount(factor, category), items=rng.choices(
                    (1, 2, 3, 4, 5, 6), weights=(40, 27, 15, 9, 5, 4))[0], category=category)
            if channel == "store":
                order.store = home if rng.random() < 0.75 else rng.choice(self.stores)[0]
            elif channel == "web":
                order.logged_in = plan.account_id is not None and rng.random() < 0.85
                if rng.random() < 0.2:
                    order.fulfilment = "click_and_collect"
                    order.store = home if rng.random() < 0.8 else rng.choice(self.stores)[0]
            plan.orders.append(order)

    def _devices(self, plan: Plan) -> None:
        rng = self.rng
        android_share = 0.75 if self.data.region == "TR" else 0.5
        starts = [plan.first_seen]
        if rng.random() < 0.2:  # a new phone part-way through
            starts.append(plan.first_seen + (plan.last_seen - plan.first_seen) * rng.random())
        for since in starts:
            if rng.random() < android_share:
                device_id, platform = f"{rng.getrandbits(64):016x}", "android"
            else:
                device_id, platform = random_uuid(rng).upper(), "ios"
            plan.devices.append(Device(device_id, platform, since, rng.random() < 0.55))

    def family_tablet(self, person: Person, plan: Plan) -> None:
        """Some households share one tablet: members each log in with their own account, so
        one device id belongs to several people (a hard negative for device-id links)."""
        if person.household_size < 2 or not plan.devices or plan.account_id is None:
            return
        if person.household_id not in self._tablets:
            self._tablets.clear()  # households arrive one after another: keep only this one
            shared = self.rng.random() < 0.15 * self.noise
            self._tablets[person.household_id] = Device(
                random_uuid(self.rng).upper(), "ios", self.start, False) if shared else None
        plan.tablet = self._tablets[person.household_id]

    def device_at(self, plan: Plan, when: dt.datetime) -> Device:
        current = plan.devices[0]
        for device in plan.devices:
            if device.since <= when:
                current = device
        return current

    def _loyalty(self, person: Person, plan: Plan) -> None:
        rng = self.rng
        store_orders = [o for o in plan.orders if o.channel == "store"]
        first = store_orders[0].at if store_orders else plan.first_seen
        # Many members joined before the window; some at their first purchase in it.
        if rng.random() < 0.5:  # at a till, during opening hours
            day = first.date() - dt.timedelta(days=rng.randint(30, 900))
            joined = dt.datetime.combine(day, dt.time(rng.randint(10, 21), rng.randrange(60),
                                                      rng.randrange(60)))
        else:
            joined = first - dt.timedelta(minutes=rng.randint(1, 30), seconds=rng.randrange(60))
        home = store_orders[0].store if store_orders and store_orders[0].store else (
            self.home_store(person))
        membership = Membership(self.ids["member"].next(), self.ids["card"].next(), joined, home)
        plan.memberships.append(membership)
        if rng.random() < 0.04 * self.noise:  # lost the card, signed up again later
            again = self.moment(joined + dt.timedelta(days=1), self.end)
            membership.until = again
            plan.memberships.append(Membership(
                self.ids["member"].next(), self.ids["card"].next(), again, home))
        spend = sum(o.amount for o in plan.orders if o.channel in ("store", "web"))
        # Points from spend in the window (x tenure: members also bought before it) plus a
        # long tail from before the window; tiers follow points.
        points = int(spend / (self.basket / 100) * rng.uniform(1.0, 4.0)
                     + rng.lognormvariate(6.2, 1.1))
        if rng.random() < 0.12:  # close to the next tier: within 10% of its threshold
            upper = rng.choice([floor for _, floor in TIERS[1:]])
            points = int(upper * rng.uniform(0.9, 0.995))
        current = plan.memberships[-1]
        current.points = points
        current.tier = [name for name, floor in TIERS if points >= floor][-1]
        for old in plan.memberships[:-1]:
            old.points, old.tier = rng.randint(0, 300), "bronze"

    def _carts(self, plan: Plan, uses_app: bool, registered_web: bool) -> None:
        rng = self.rng
        for order in plan.orders:
            if order.channel in ("web", "app") and rng.random() < 0.8:
                created = order.at - dt.timedelta(minutes=rng.randint(3, 600))
                plan.carts.append(Cart(
                    self.ids["cart"].next(), order.channel, max(created, self.start), order.at,
                    "converted", order.items, order.amount, order.category, order.order_id,
                    self.device_at(plan, order.at) if order.channel == "app" else None,
                    order.logged_in or order.channel == "app"))
        channels = [c for c, used in (("web", registered_web and plan.account_id), ("app",
                    uses_app)) if used]
        if not channels:
            return
        abandoned = rng.choices((0, 1, 2, 3), weights=(45, 35, 14, 6))[0]
        for _ in range(abandoned):
            channel = rng.choice(channels)
            if rng.random() < 0.35:  # recent: what abandoned-cart campaigns target
                created = self.moment(self.end - dt.timedelta(days=7), self.end)
            else:
                created = self.moment(plan.first_seen, self.end)
            updated = min(created + dt.timedelta(minutes=rng.randint(1, 240)),
                          self.end - dt.timedelta(seconds=1))
            category = self.category(plan)
            items = rng.choices((1, 2, 3, 4), weights=(50, 30, 12, 8))[0]
            device = self.device_at(plan, created) if channel == "app" else None
            plan.carts.append(Cart(
                self.ids["cart"].next(), channel, created, updated,
                rng.choice(("open", "open", "checkout")), items,
                self.amount(1.0, category) * items / 2, category, None, device,
                plan.account_id is not None and (channel == "web" or rng.random() < 0.8)))


def _geometric(rng: random.Random, p: float) -> int:
    """Failures before the first success, capped: order counts with a long-ish tail."""
    count = 0
    while rng.random() > p and count < 25:
        count += 1
    return count


def random_uuid(rng: random.Random) -> str:
    """A version-4 shaped UUID drawn from `rng` (uuid.uuid4 would not be reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"


def _stores(data: LocaleData) -> list[tuple[str, str]]:
    """(store code, city): big cities get several stores."""
    stores = []
    for rank, place in enumerate(data.places):
        count = max(1, min(8, round(place.weight / 2)))
        prefix = f"M{place.plate:02d}" if place.plate is not None else f"S{rank + 1:02d}"
        stores += [(f"{prefix}{i + 1:02d}", place.city) for i in range(count)]
    return stores
