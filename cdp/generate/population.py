"""The simulated population: people in households, with the identifiers they really have.

Households are the hard negatives of identity resolution: members share surname, address,
postcode, often a landline and sometimes one family email; some children are twins (same surname,
birth date and address, different first names). Very common names recur across households.
Life events (moving house, a new email address) give one person several true identifiers.
People are produced household by household, so memory stays flat for any population size.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import phonenumbers

from cdp.generate.locales import (
    TR_NEIGHBOURHOODS,
    TR_STREET_KINDS,
    TR_STREETS,
    LocaleData,
    Place,
    pick,
)
from cdp.generate.noise import email_local

# Turkish mobile operator prefixes (5xx), weighted roughly by market share.
TR_MOBILE_PREFIXES = (
    ["530", "531", "532", "533", "534", "535", "536", "537", "538", "539"] * 4
    + ["541", "542", "543", "544", "545", "546", "547", "548", "549"] * 3
    + ["501", "505", "506", "507", "551", "552", "553", "554", "555"] * 2
)
HOUSEHOLD_SIZES = ((1, 2, 3, 4, 5), (45, 25, 14, 11, 5))


@dataclass(slots=True)
class Address:
    """One postal address, kept in parts so each channel can write it its own way."""

    street: str  # "Cumhuriyet Mah. Lale Sokak No:12 D:4" or "141 Carter Mountains"
    district: str
    city: str
    postcode: str
    parts: tuple[str, ...] = ()  # TR: neighbourhood, street name, street kind, number, flat


@dataclass(slots=True)
class Person:
    pid: int
    entity_id: str
    household_id: int
    gender: str  # "F" | "M"
    first_name: str  # may be compound: "Ayşe Nur"
    last_name: str
    birth_date: dt.date
    email: str
    phone: str  # E.164 mobile
    address: Address
    household_size: int
    landline: str | None = None
    family_email: str | None = None  # one mailbox the household shares
    old_email: str | None = None  # used before `email_changed`
    email_changed: dt.date | None = None
    old_address: Address | None = None  # lived here before `moved`
    moved: dt.date | None = None
    twin: bool = False
    tags: set[str] = field(default_factory=set)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def email_at(self, day: dt.date) -> str:
        if self.old_email and self.email_changed and day < self.email_changed:
            return self.old_email
        return self.email

    def address_at(self, day: dt.date) -> Address:
        if self.old_address and self.moved and day < self.moved:
            return self.old_address
        return self.address


class PopulationBuilder:
    """Creates people household by household; identifiers are unique across the population."""

    def __init__(self, data: LocaleData, rng: random.Random, noise: float, as_of: dt.date,
                 window_days: int) -> None:
        self.data = data
        self.rng = rng
        self.noise = max(0.0, noise)
        self.as_of = as_of
        self.window_days = window_days
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self._mobile_template = _number_template(data.region, phonenumbers.PhoneNumberType.MOBILE)
        self._fixed_template = _number_template(data.region,
                                                phonenumbers.PhoneNumberType.FIXED_LINE)
        self._place_weights = [p.weight for p in data.places]
        self.twins_made = 0

    # --- the population ---------------------------------------------------------------------
    def households(self, people: int) -> Iterator[list[Person]]:
        """Yield households (lists of people) until `people` people exist."""
        pid = 0
        household_id = 0
        while pid < people:
            size = min(self.rng.choices(*HOUSEHOLD_SIZES)[0], people - pid)
            members = self._household(household_id, pid, size)
            pid += len(members)
            household_id += 1
            yield members

    def _household(self, household_id: int, first_pid: int, size: int) -> list[Person]:
        rng, data = self.rng, self.data
        last = pick(rng, data.last)
        place = rng.choices(data.places, weights=self._place_weights)[0]
        address = self._address(place)
        landline = self._landline(place, address) if rng.random() < (
            0.25 if size == 1 else 0.5) else None
        family_email = None
        if size > 1 and rng.random() < min(0.9, 0.3 * self.noise):
            family_email = self._family_email(last)
        has_partner = size >= 2 and rng.random() < 0.85
        children = size - 1 - int(has_partner)
        head_age = rng.randint(40, 72) if children else rng.randint(19, 82)
        head_gender = rng.choice("FM")
        roles: list[tuple[str, int]] = [(head_gender, head_age)]
        if has_partner:
            partner_gender = "F" if head_gender == "M" else "M"
            roles.append((partner_gender, max(19, head_age + rng.randint(-6, 6))))
        child_ages = [rng.randint(16, max(16, head_age - 21)) for _ in range(children)]
        # Twins: the first household with two children always has them (so even a tiny
        # population has a pair), afterwards about one such household in eight.
        twins = children >= 2 and (self.twins_made == 0 or rng.random() < 0.12)
        if twins:
            child_ages[1] = child_ages[0]
            self.twins_made += 1
        roles += [(rng.choice("FM"), age) for age in child_ages]

        members: list[Person] = []
        used_first: set[str] = set()
        twin_birth: dt.date | None = None
        for offset, (gender, age) in enumerate(roles):
            first = self._first_name(gender, exclude=used_first)
            used_first.add(first.split(" ")[0])
            is_twin = twins and offset in (len(roles) - children, len(roles) - children + 1)
            if is_twin and twin_birth is not None:
                birth = twin_birth
            else:
                birth = self._birth_date(age)
                if is_twin:
                    twin_birth = birth
            pid = first_pid + offset
            person = Person(
                pid=pid, entity_id=f"P{pid + 1:07d}", household_id=household_id, gender=gender,
                first_name=first, last_name=last, birth_date=birth,
                email=self._personal_email(first, last, birth), phone=self._mobile(),
                address=address, household_size=size, landline=landline,
                family_email=family_email, twin=is_twin,
            )
            members.append(person)
        self._life_events(members, place)
        return members

    def _life_events(self, members: list[Person], place: Place) -> None:
        """Moves and new email addresses; scaled by noise so noise=0 has none."""
        rng = self.rng
        if rng.random() < 0.06 * self.noise:  # the whole household moved
            new_place = place if rng.random() < 0.6 else rng.choices(
                self.data.places, weights=self._place_weights)[0]
            new_address = self._address(new_place)
            moved = self._day_in_window(0.15, 0.9)
            for person in members:
                person.old_address, person.address = person.address, new_address
                person.moved = moved
        elif len(members) > 2 and rng.random() < 0.08 * self.noise:  # a grown child moved out
            child = members[-1]
            child.old_address = child.address
            child.address = self._address(rng.choices(self.data.places,
                                                      weights=self._place_weights)[0])
            child.moved = self._day_in_window(0.15, 0.9)
        for person in members:
            if rng.random() < 0.07 * self.noise:
                person.old_email = person.email
                person.email = self._personal_email(person.first_name, person.last_name,
                                                    person.birth_date, avoid_domain=True,
                                                    previous=person.email)
                person.email_changed = self._day_in_window(0.15, 0.9)

    # --- identifiers ------------------------------------------------------------------------
    def _first_name(self, gender: str, exclude: set[str]) -> str:
        pool = self.data.female if gender == "F" else self.data.male
        seconds = self.data.second_female if gender == "F" else self.data.second_male
        for _ in range(20):
            name = pick(self.rng, pool)
            if name not in exclude:
                break
        if seconds and self.rng.random() < 0.1:
            second = self.rng.choice(seconds)
            if second != name:
                name = f"{name} {second}"
        return name

    def _birth_date(self, age: int) -> dt.date:
        year = self.as_of.year - age - 1
        return dt.date(year, 1, 1) + dt.timedelta(days=self.rng.randrange(365))

    def _day_in_window(self, start_share: float, end_share: float) -> dt.date:
        """A day between `start_share` and `end_share` of the event window (0 = oldest)."""
        days = self.window_days
        offset = self.rng.randint(int(days * start_share), int(days * end_share))
        return self.as_of - dt.timedelta(days=days - offset)

    def _personal_email(self, first: str, last: str, birth: dt.date, avoid_domain: bool = False,
                        previous: str | None = None) -> str:
        rng = self.rng
        parts = first.split(" ")
        f = email_local(parts[0] if rng.random() < 0.6 else "".join(parts))
        ln = email_local(last)
        yy, yyyy = f"{birth.year % 100:02d}", str(birth.year)
        n = str(rng.randint(1, 999))
        patterns = (
            (f"{f}.{ln}", 25), (f"{f}{ln}", 15), (f"{f}.{ln}{yy}", 12), (f"{f}{ln}{yy}", 10),
            (f"{f}_{ln}", 6), (f"{f}{ln}{yyyy}", 6), (f"{f[:1]}{ln}", 8), (f"{f}.{ln[:1]}", 3),
            (f"{ln}.{f}", 4), (f"{f}{n}", 6), (f"{f}.{ln}{n}", 5),
        )
        local = rng.choices([p for p, _ in patterns], weights=[w for _, w in patterns])[0]
        domains = self.data.email_domains[0]
        domain = pick(rng, self.data.email_domains)
        if avoid_domain and previous and previous.endswith("@" + domain):
            domain = next((d for d in domains if not previous.endswith("@" + d)), domain)
        return self._claim(local, domain)

    def _claim(self, local: str, domain: str) -> str:
        """A mailbox nobody else has. Gmail ignores dots, so `ayse.kaya` and `aysekaya` are one
        mailbox and cannot belong to two people."""
        address = f"{local}@{domain}"
        tries = 0
        while _mailbox(address) in self.used_emails:
            # Two digits first, as people do; longer numbers once those run out.
            tries += 1
            top = 99 if tries < 10 else 9999 if tries < 30 else 999_999
            address = f"{local}{self.rng.randint(1, top)}@{domain}"
        self.used_emails.add(_mailbox(address))
        return address

    def _family_email(self, last: str) -> str:
        ln = email_local(last)
        local = self.rng.choice(
            [f"{ln}ailesi", f"{ln}.aile", f"aile{ln}"] if self.data.turkish
            else [f"the{ln}s", f"{ln}family", f"{ln}.home"])
        return self._claim(local, self.data.email_domains[0][0])

    def _mobile(self) -> str:
        while True:
            if self.data.region == "TR":
                number = "+90" + self.rng.choice(TR_MOBILE_PREFIXES) + (
                    f"{self.rng.randrange(10**7):07d}")
            else:
                number = _from_template(self._mobile_template, self.rng)
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def _landline(self, place: Place, address: Address) -> str:
        while True:
            area = place.area_codes.get(address.district)
            if area:
                number = f"+90{area}{self.rng.randint(2, 7)}{self.rng.randrange(10**6):06d}"
            else:
                number = _from_template(self._fixed_template, self.rng)
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def _address(self, place: Place) -> Address:
        rng = self.rng
        district = rng.choice(place.districts)
        if place.plate is not None:  # Turkish: neighbourhood + street + number + flat
            d_index = place.districts.index(district)
            hood_index = rng.randrange(len(TR_NEIGHBOURHOODS))
            hood = TR_NEIGHBOURHOODS[hood_index]
            street = rng.choice(TR_STREETS)
            kind = rng.choices(list(TR_STREET_KINDS), weights=[35, 55, 10])[0]
            number = str(rng.randint(1, 180))
            flat = str(rng.randint(1, 24)) if rng.random() < 0.8 else ""
            postcode = f"{place.plate:02d}{100 + 40 * d_index + (hood_index * 7) % 40:03d}"
            line = f"{hood} Mah. {street} {kind} No:{number}" + (f" D:{flat}" if flat else "")
            return Address(line, district, place.city, postcode, (hood, street, kind, number, flat))
        fake = self.data.faker
        line = fake.street_address()
        return Address(line, district, place.city, fake.postcode())


def _mailbox(address: str) -> str:
    local, _, domain = address.partition("@")
    if domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return address


def _number_template(region: str, kind: int) -> tuple[int, str] | None:
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    return example.country_code, str(example.national_number)


def _from_template(template: tuple[int, str] | None, rng: random.Random) -> str:
    """A valid number shaped like the region's example: keep its prefix, randomise the rest."""
    if template is None:
        return f"+1555{rng.randrange(10**7):07d}"
    cc, national = template
    keep = min(3, len(national) - 4)
    for _ in range(50):
        digits = national[:keep] + "".join(str(rng.randrange(10))
                                           for _ in range(len(national) - keep))
        number = phonenumbers.parse(f"+{cc}{digits}")
        if phonenumbers.is_valid_number(number):
            return f"+{cc}{digits}"
    return f"+{cc}{national}"  # the region's own example number: valid, if not unique
