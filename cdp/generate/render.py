"""How a channel writes a person's identifiers: names, addresses, emails, phones, as that kind of
system (and the people typing into it) would. Probabilities are per record, scaled by noise."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cdp.generate.locales import COUNTRY_SPELLINGS, JUNK_EMAILS, TR_STREET_KINDS, LocaleData
from cdp.generate.noise import Noise, fold, lower, upper
from cdp.generate.population import Address, Person

JUNK_PHONES_TR = ("05555555555", "0000000000", "5555555555", "1111111111", "05000000000")
JUNK_PHONES_OTHER = ("0000000000", "1111111111", "1234567890")
_EN_ABBREVIATIONS = {"Street": "St", "Road": "Rd", "Avenue": "Ave", "Lane": "Ln",
                     "Drive": "Dr", "Court": "Ct", "Place": "Pl", "Square": "Sq"}


@dataclass(frozen=True)
class NameStyle:
    """How a system's users type names. Each number is a per-record probability at noise=1."""

    typo: float = 0.03
    fold: float = 0.03
    nickname: float = 0.03
    swap: float = 0.01  # first and last name in each other's fields
    lower: float = 0.03
    upper: float = 0.02


class Renderer:
    """Per-channel writing of identifiers for one locale, driven by a shared `Noise`."""

    def __init__(self, noise: Noise, data: LocaleData) -> None:
        self.noise = noise
        self.data = data
        self.rng = noise.rng
        self.turkish = data.turkish
        self.junk_phones = JUNK_PHONES_TR if data.region == "TR" else JUNK_PHONES_OTHER

    def names(self, person: Person, style: NameStyle) -> tuple[str, str]:
        """(first, last) as one record holds them. Folding and casing are decided once per
        record (whoever typed it had one keyboard and one habit); typos per word."""
        n = self.noise
        first = n.given_name(person.first_name, self.data.nicknames, style.nickname)
        last = person.last_name
        if n.chance(style.typo):
            first = n.typo(first)
        if n.chance(style.typo * 0.7):
            last = n.typo(last)
        if n.chance(style.fold):
            first, last = fold(first), fold(last)
        if n.chance(style.swap):
            first, last = last, first
        if n.chance(style.lower):
            first, last = lower(first, self.turkish), lower(last, self.turkish)
        elif n.chance(style.upper):
            first, last = upper(first, self.turkish), upper(last, self.turkish)
        elif n.chance(style.upper):  # the formal habit: surname in capitals
            last = upper(last, self.turkish)
        return first, last

    def full_name(self, person: Person, style: NameStyle, surname_first: float = 0.0) -> str:
        first, last = self.names(person, style)
        # Some systems (legacy POS, forms copied from ID cards) put the surname first.
        if surname_first and self.rng.random() < surname_first * min(1.0, self.noise.level):
            return f"{last} {first}"
        return f"{first} {last}"

    def pos_name(self, text: str, fold_share: float) -> str:
        """Legacy POS: upper case with Turkish rules, often without Turkish letters."""
        text = upper(text, self.turkish)
        return fold(text) if self.noise.chance(fold_share) else text

    def email(self, person: Person, day: dt.date, p_noise: float, p_family: float = 0.0,
              p_junk: float = 0.0) -> str:
        n = self.noise
        if n.chance(p_junk):
            return self.rng.choice(JUNK_EMAILS)
        address = person.email_at(day)
        if person.family_email and n.chance(p_family):
            address = person.family_email
        return n.email(address, p_noise)

    def phone(self, person: Person, default_style: str, p_variant: float, p_junk: float = 0.0,
              landline_share: float = 0.0) -> str:
        n = self.noise
        if n.chance(p_junk):
            return self.rng.choice(self.junk_phones)
        number = person.phone
        if person.landline and n.chance(landline_share):
            number = person.landline
        return n.phone(number, default_style, p_variant)

    def junk_phone(self) -> str:
        return self.rng.choice(self.junk_phones)

    def address_line(self, address: Address, p_variant: float) -> str:
        n = self.noise
        if not n.chance(p_variant):
            return address.street
        rng = self.rng
        if address.parts:
            hood, street, kind, number, flat = address.parts
            hood_word = rng.choice(("Mah.", "Mahallesi", "Mh.", "Mah"))
            kind_word = rng.choice((kind, *TR_STREET_KINDS[kind]))
            number_part = rng.choice((f"No:{number}", f"No: {number}", f"No {number}"))
            if flat and rng.random() < 0.8:
                flat_part = rng.choice((f" D:{flat}", f" Daire {flat}", f" Daire:{flat}",
                                        f"/{flat}", f" D.{flat}"))
                number_part += flat_part
            line = f"{hood} {hood_word} {street} {kind_word} {number_part}"
            if rng.random() < 0.15:  # street first, neighbourhood last
                line = f"{street} {kind_word} {number_part} {hood} {hood_word}"
        else:
            words = address.street.split(" ")
            words = [_EN_ABBREVIATIONS.get(w, w) if rng.random() < 0.6 else w for w in words]
            line = " ".join(words)
        return n.casing(line, 0.3, 0.2)

    def city(self, address: Address, p_variant: float) -> str:
        n = self.noise
        city = address.city
        if n.chance(p_variant):
            city = self.rng.choice((fold(city), upper(city, self.turkish),
                                    upper(fold(city), False), lower(city, self.turkish)))
        return city

    def country(self, p_variant: float) -> str:
        spellings = COUNTRY_SPELLINGS.get(self.data.region, (self.data.region,))
        if self.noise.chance(p_variant):
            return self.rng.choice(spellings)
        return spellings[0]

