"""One row builder per channel: a person and their plan in, that system's native rows out.

Builders return dicts keyed by the channel's native column names (as declared in cdp.yaml) with
Python values (str, int, float, bool, date, datetime, None); the writers turn them into the
declared file format, so date formats and decimal separators come from the config.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cdp.generate.activity import Plan, Planner, random_uuid
from cdp.generate.ids import OpaqueIds
from cdp.generate.locales import LocaleData
from cdp.generate.noise import Noise, fold, format_date, upper
from cdp.generate.population import Person
from cdp.generate.render import NameStyle, Renderer

Row = dict[str, object]

WEB_STYLE = NameStyle(typo=0.03, fold=0.05, nickname=0.03, swap=0.015, lower=0.05, upper=0.03)
APP_STYLE = NameStyle(typo=0.02, fold=0.05, nickname=0.08, swap=0.0, lower=0.08, upper=0.0)
POS_STYLE = NameStyle(typo=0.05, fold=0.0, nickname=0.02, swap=0.0, lower=0.0, upper=0.0)
EMAIL_STYLE = NameStyle(typo=0.02, fold=0.05, nickname=0.05, swap=0.0, lower=0.05, upper=0.0)
SMS_STYLE = NameStyle(typo=0.03, fold=0.0, nickname=0.03, swap=0.01, lower=0.05, upper=0.0)
CALL_STYLE = NameStyle(typo=0.07, fold=0.1, nickname=0.04, swap=0.01, lower=0.1, upper=0.03)
LOYALTY_STYLE = NameStyle(typo=0.02, fold=0.03, nickname=0.01, swap=0.01, lower=0.02, upper=0.05)

TOPICS = ("order_status", "return_request", "delivery_delay", "loyalty_points", "complaint",
          "product_question", "payment_issue", "account_access")
RESOLUTIONS = ("resolved", "resolved", "resolved", "escalated", "callback_scheduled", "open")
PAYMENT_TYPES = {"TR": ("KREDI KARTI", "KREDI KARTI", "BANKA KARTI", "NAKIT", "HEDIYE CEKI"),
                 "other": ("CARD", "CARD", "DEBIT", "CASH", "GIFT CARD")}


@dataclass
class Context:
    """Everything a builder needs besides the person: randomness, locale, ids."""

    rng: random.Random
    noise: Noise
    data: LocaleData
    render: Renderer
    planner: Planner
    ids: dict[str, OpaqueIds]

    @property
    def turkish(self) -> bool:
        return self.data.turkish


Builder = Callable[[Person, Plan, Context], Iterator[Row]]


def web_orders(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    r, n, rng = ctx.render, ctx.noise, ctx.rng
    for order in plan.orders:
        if order.channel != "web":
            continue
        day = order.at.date()
        first, last = r.names(person, WEB_STYLE)
        address = person.address_at(day)
        collect = order.fulfilment == "click_and_collect"
        email = r.email(person, day, p_noise=0.08, p_family=0.08,
                        p_junk=0.0 if order.logged_in else 0.04)
        has_phone = not n.chance(0.12)
        yield {
            "order_id": order.order_id,
            "ordered_at": order.at,
            "account_id": plan.account_id if order.logged_in else None,
            "customer_email": email,
            "first_name": first,
            "last_name": last,
            "phone": r.phone(person, "national", 0.35, p_junk=0.02, landline_share=0.06)
            if has_phone else None,
            "birth_date": n.birth_date(person.birth_date, "iso", 0.06)
            if rng.random() < 0.4 else None,
            "shipping_address": None if collect and rng.random() < 0.7
            else r.address_line(address, 0.35),
            "city": r.city(address, 0.1),
            "postal_code": None if n.chance(0.08) else address.postcode,
            "country": r.country(0.15),
            "order_total": order.amount,
            "currency": ctx.data.currency,
            "item_count": order.items,
            "category": order.category,
            "fulfilment": order.fulfilment,
            "pickup_store_id": order.store if collect else None,
            "email_opt_in": plan.email_opt_in,
            "sms_opt_in": plan.sms_opt_in,
            "ads_opt_in": plan.ads_opt_in,
        }


def app_events(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    """Sessions of app_open -> product_view -> add_to_cart -> checkout_start -> purchase."""
    if not plan.devices:
        return
    rng, planner, r = ctx.rng, ctx.planner, ctx.render
    sessions: list[tuple[dt.datetime, object]] = [
        (o.at, o) for o in plan.orders if o.channel == "app"]
    browse_end = min(plan.last_seen + dt.timedelta(days=60), planner.end)
    sessions += [(planner.moment(plan.first_seen, browse_end), None)
                 for _ in range(plan.app_sessions)]
    sessions.sort(key=lambda s: s[0])
    seen_devices: set[str] = set()
    profile_name = r.full_name(person, APP_STYLE) if rng.random() < 0.6 else None
    if profile_name and rng.random() < 0.2:
        profile_name = profile_name.split(" ")[0]  # only a first name in the profile
    for at, order in sessions:
        device = planner.device_at(plan, at)
        on_tablet = plan.tablet is not None and order is None and rng.random() < 0.25
        if on_tablet:
            device = plan.tablet  # type: ignore[assignment]
        # A device's first session logs in, so every device is tied to its account once; on
        # the family tablet everyone logs in as themselves.
        logged_in = plan.account_id is not None and (
            order is not None or on_tablet or device.device_id not in seen_devices
            or rng.random() < 0.7)
        seen_devices.add(device.device_id)
        steps = ["app_open"] + ["product_view"] * rng.randint(1, 4)
        if order is not None:
            steps += ["add_to_cart", "checkout_start", "purchase"]
        elif rng.random() < 0.35:
            steps.append("add_to_cart")
            if rng.random() < 0.4:
                steps.append("checkout_start")
        gaps = [rng.randint(5, 90) for _ in steps]
        # A purchase session ends at the order's time; a browsing session starts at `at`.
        start = at - dt.timedelta(seconds=sum(gaps)) if order is not None else at
        category = order.category if order is not None else planner.category(plan)
        # The app keeps one login per session: its email is written the same way throughout.
        email = r.email(person, at.date(), p_noise=0.02) if logged_in else None
        when = start
        for step, gap in zip(steps, gaps, strict=True):
            when = min(max(when + dt.timedelta(seconds=gap), planner.start),
                       planner.end - dt.timedelta(seconds=1))
            row: Row = {
                "event_id": random_uuid(rng),
                "event_time": when,
                "event_type": step,
                "device_id": device.device_id,
                "platform": device.platform,
                "push_opt_in": device.push_opt_in,
            }
            if logged_in:
                row["account_id"] = plan.account_id
                row["login_email"] = email
                if profile_name:
                    row["user_name"] = profile_name
            if step != "app_open":
                row["product_category"] = category
            if step == "purchase":
                row["order_id"] = order.order_id  # type: ignore[union-attr]
                row["revenue"] = order.amount  # type: ignore[union-attr]
            yield row


def pos_transactions(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    r, n, rng = ctx.render, ctx.noise, ctx.rng
    payments = PAYMENT_TYPES["TR" if ctx.data.region == "TR" else "other"]
    for order in plan.orders:
        if order.channel != "store":
            continue
        membership = plan.membership_at(order.at)
        card = membership.card_number if membership and rng.random() < 0.85 else None
        phone: str | None = None
        if card is None or rng.random() < 0.45:
            phone = r.phone(person, "national", 0.3, landline_share=0.04)
        if card is not None and phone is None and n.chance(0.12):
            phone = r.junk_phone()  # the till wants a number; staff type a placeholder
        name = None
        if rng.random() < (0.45 if card else 0.7):
            name = r.pos_name(r.full_name(person, POS_STYLE, surname_first=0.15), 0.35)
        yield {
            "TRX_NO": order.order_id,
            "TRX_DATE": order.at.replace(second=0),
            "STORE_CODE": order.store,
            "LOYALTY_CARD": card,
            "CUST_NAME": name,
            "CUST_PHONE": phone,
            "AMOUNT": order.amount,
            "CATEGORY": order.category,
            "PAYMENT_TYPE": rng.choice(payments),
        }


def email_subscribers(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    if not plan.email_subscriber:
        return
    r, n, rng, planner = ctx.render, ctx.noise, ctx.rng, ctx.planner
    subscribed = planner.moment(planner.start - dt.timedelta(days=365), plan.last_seen)
    subscriptions: list[tuple[dt.datetime, str, str]] = []
    address = person.email_at(subscribed.date())
    if person.family_email and n.chance(0.15):
        address = person.family_email
    status = "subscribed" if plan.email_opt_in else "unsubscribed"
    if person.old_email and address == person.old_email:
        # The old mailbox: bounced or unsubscribed; often the new one signed up again.
        subscriptions.append((subscribed, address, rng.choice(("bounced", "unsubscribed"))))
        if rng.random() < 0.7:
            again = planner.moment(dt.datetime.combine(person.email_changed, dt.time()),
                                   planner.end)  # type: ignore[arg-type]
            subscriptions.append((again, person.email, status))
    else:
        subscriptions.append((subscribed, address, "bounced" if rng.random() < 0.03 else status))
    for at, mailbox, state in subscriptions:
        opens = clicks = 0
        engaged = state == "subscribed" and rng.random() < (0.55 if plan.orders else 0.4)
        if engaged:
            opens = rng.randint(1, 25)
            clicks = rng.randint(0, max(0, opens // 3))
        last_open = planner.moment(planner.end - dt.timedelta(days=30), planner.end) \
            if opens else None
        last_click = planner.moment(planner.end - dt.timedelta(days=30), last_open) \
            if clicks and last_open else None
        yield {
            "subscriber_id": ctx.ids["subscriber"].next(),
            "email": n.email(mailbox, 0.06),
            "first_name": r.names(person, EMAIL_STYLE)[0] if rng.random() < 0.5 else None,
            "subscribed_at": at,
            "status": state,
            "language": ctx.data.language if rng.random() < 0.93 else "en",
            "opens_30d": opens,
            "clicks_30d": clicks,
            "last_open_at": last_open if last_open and last_open >= at else None,
            "last_click_at": last_click if last_click and last_click >= at else None,
        }


def sms_contacts(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    if not plan.sms_contact:
        return
    r, n, rng, planner = ctx.render, ctx.noise, ctx.rng, ctx.planner
    opted = planner.moment(plan.first_seen, plan.last_seen)
    name = None
    if rng.random() < 0.7:
        name = r.full_name(person, SMS_STYLE)
        if n.chance(0.6):  # gateway charset: Turkish letters dropped
            name = fold(name)
        if n.chance(0.2):
            name = upper(name, ctx.turkish)
    sent = rng.randint(0, 40) if plan.sms_opt_in else rng.randint(0, 3)
    last_sent = planner.moment(opted, planner.end) if sent else None
    yield {
        "contact_id": ctx.ids["contact"].next(),
        "msisdn": r.phone(person, "cc_digits", 0.1),
        "name": name,
        "opt_in": "Y" if plan.sms_opt_in else "N",
        "opt_in_date": opted.date(),
        "messages_sent": sent,
        "last_sent_at": last_sent,
    }


def call_center_tickets(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    r, rng, planner = ctx.render, ctx.rng, ctx.planner
    for _ in range(plan.tickets):
        created = planner.moment(plan.first_seen, planner.end, (8, 22))
        modes = plan.ticket_modes
        chat = modes == ("chat",) or ("chat" in modes and rng.random() < 0.3)
        number = email = None
        if chat:
            email = r.email(person, created.date(), 0.1, p_family=0.1, p_junk=0.04)
        elif rng.random() < 0.93:  # caller id; the rest withheld their number
            number = r.phone(person, "e164", 0.05, landline_share=0.2)
        name = None
        if rng.random() < 0.85:
            name = r.full_name(person, CALL_STYLE)
            if rng.random() < 0.1:
                name = name.split(" ")[0]  # the agent only caught the first name
        yield {
            "ticket_id": ctx.ids["ticket"].next(),
            "created_at": created,
            "caller_number": number,
            "caller_name": name,
            "email": email,
            "topic": rng.choice(TOPICS),
            "contact_channel": "chat" if chat else "phone",
            "resolution": rng.choice(RESOLUTIONS),
            "duration_sec": rng.randint(40, 1500),
        }


def loyalty_members(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    r, n, rng = ctx.render, ctx.noise, ctx.rng
    for membership in plan.memberships:
        joined = membership.joined_at
        first, last = r.names(person, LOYALTY_STYLE)
        # The profile keeps the address given at sign-up unless the member updated it.
        address = person.address if rng.random() < 0.5 else person.address_at(joined.date())
        email = None if n.chance(0.08) else r.email(person, joined.date(), 0.05, p_family=0.06,
                                                       p_junk=0.02)
        mobile = r.phone(person, "national_spaced", 0.3, p_junk=0.02) if not n.chance(0.04) \
            else None
        birth: str | None = format_date(person.birth_date, "dmy_slash")  # DD/MM/YYYY form
        if n.chance(0.08):
            birth = format_date(person.birth_date, "dmy_dot_short")  # typed as D.M.YYYY
        elif n.chance(0.05):
            birth = None
        yield {
            "member_id": membership.member_id,
            "card_number": membership.card_number,
            "first_name": first,
            "last_name": last,
            "birth_date": birth,
            "gender": person.gender if not n.chance(0.03) else None,
            "email": email,
            "mobile": mobile,
            "city": r.city(address, 0.1),
            "district": address.district,
            "joined_at": joined.replace(microsecond=0),
            "tier": membership.tier,
            "points_balance": membership.points,
            "home_store": membership.home_store,
            "email_consent": plan.email_opt_in,
            "sms_consent": plan.sms_opt_in,
            "ads_consent": plan.ads_opt_in,
        }


def carts(person: Person, plan: Plan, ctx: Context) -> Iterator[Row]:
    r = ctx.render
    for cart in plan.carts:
        logged_in = cart.logged_in and plan.account_id is not None
        # A guest's web cart only knows the email typed at checkout.
        guest_email = cart.channel == "web" and not logged_in
        email = None
        if logged_in or guest_email:
            email = r.email(person, cart.created_at.date(), 0.03)
        yield {
            "cart_id": cart.cart_id,
            "channel": cart.channel,
            "account_id": plan.account_id if logged_in else None,
            "device_id": cart.device.device_id if cart.device else None,
            "login_email": email,
            "created_at": cart.created_at,
            "updated_at": cart.updated_at,
            "status": cart.status,
            "item_count": cart.items,
            "cart_value": round(cart.value, 2),
            "category": cart.category,
            "converted_order_id": cart.order_id,
        }


BUILDERS: dict[str, Builder] = {
    "web_orders": web_orders,
    "app_events": app_events,
    "pos_transactions": pos_transactions,
    "email_subscribers": email_subscribers,
    "sms_contacts": sms_contacts,
    "call_center_tickets": call_center_tickets,
    "loyalty_members": loyalty_members,
    "carts": carts,
}
# JSON exporters differ: the app collector omits absent fields, the CRM writes nulls.
OMIT_NULLS = {"app_events"}
