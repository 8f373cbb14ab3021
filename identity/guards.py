"""When are two records (or two clusters) clearly different people?

Used twice: to count how many different people use one identifier value (cardinality guard) and
to refuse merges while clustering (anti-chaining guard). Both ask the same questions of first
names and birth dates, so a family sharing an email counts as several people *and* is kept apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache

from identity.nicknames import name_forms
from identity.text import edit_distance_at_most_one, jaro_winkler

# Two given names this similar are typing variants of one name (Mehmet / Mehmte / Memet).
NAME_SIMILARITY = 0.88


def _tokens_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) == 1 or len(b) == 1:  # an initial: "M" fits "Mehmet"
        return a[0] == b[0]
    if name_forms(a) & name_forms(b):  # a nickname or short form of the same name
        return True
    if min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):  # Abdul / Abdullah
        return True
    if min(len(a), len(b)) >= 3 and edit_distance_at_most_one(a, b):  # one slip: Ece / Ecr
        return True
    return jaro_winkler(a, b) >= NAME_SIMILARITY


@lru_cache(maxsize=1_000_000)
def first_names_compatible(a: str | None, b: str | None) -> bool:
    """Could two folded given names (possibly several words: "ayse nur") be the same person's?

    Unknown names are compatible with anything; otherwise one word of each must match exactly,
    as a nickname/short form, as an initial or prefix, one typing slip apart, or as a near
    spelling (Jaro-Winkler).
    """
    if not a or not b:
        return True
    return any(_tokens_compatible(x, y) for x in a.split() for y in b.split())


@lru_cache(maxsize=1_000_000)
def names_compatible(a: tuple[str | None, str | None], b: tuple[str | None, str | None]) -> bool:
    """Could two (first, last) name keys be the same person's? Given names must be compatible,
    or the two records must hold the same names in swapped fields."""
    (first_a, last_a), (first_b, last_b) = a, b
    if first_names_compatible(first_a, first_b):
        return True
    return bool(last_a and last_b and first_names_compatible(first_a, last_b)
                and first_names_compatible(last_a, first_b))


def birth_dates_compatible(a: date | None, b: date | None) -> bool:
    """Equal, or one typing slip apart (one digit, two adjacent digits swapped, day and month
    swapped): a person's birth date is typed differently, but not into a different person's."""
    if a is None or b is None or a == b:
        return True
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return True
    return edit_distance_at_most_one(a.strftime("%Y%m%d"), b.strftime("%Y%m%d"))


Signature = tuple[str | None, str | None, date | None]  # first name key, last name key, birth


def _informative(first: str | None) -> str | None:
    """A given name that can tell people apart: initials alone cannot ("A" fits Ali and Ayşe)."""
    return first if first and any(len(t) > 1 for t in first.split()) else None


def group_people(signatures: Sequence[Signature],
                 stop_above: int | None = None) -> list[int | None]:
    """Which person (0, 1, ...) each (first, last, birth date) signature belongs to.

    Greedy grouping: a signature joins the first group whose birth dates it fits and one of
    whose names it fits (nickname, typo, swapped fields); a signature with neither an informative
    given name nor a birth date says nothing and gets None. With `stop_above`, grouping stops once
    there are more groups than that (a placeholder phone used by 900 people is junk at 4);
    signatures not reached get None.
    """
    groups: list[tuple[set[tuple[str, str | None]], set[date]]] = []
    assigned: list[int | None] = [None] * len(signatures)
    usable = [(i, _informative(f), la, b) for i, (f, la, b) in enumerate(signatures)]
    usable = [s for s in usable if s[1] or s[3]]
    usable.sort(key=lambda s: (s[1] is None, s[3] is None, s[1] or "", s[2] or "",
                               s[3] or date.min))
    for index, first, last, born in usable:
        name = (first, last) if first else None
        for g, (names, dates) in enumerate(groups):
            if ((name is None or not names or any(names_compatible(name, n) for n in names))
                    and all(birth_dates_compatible(born, d) for d in dates)):
                if name:
                    names.add(name)
                if born:
                    dates.add(born)
                assigned[index] = g
                break
        else:
            groups.append(({name} if name else set(), {born} if born else set()))
            assigned[index] = len(groups) - 1
            if stop_above is not None and len(groups) > stop_above:
                break
    return assigned


def people_count(signatures: Sequence[Signature], stop_above: int | None = None) -> int:
    """How many clearly different people a set of signatures describes (see `group_people`)."""
    return len({g for g in group_people(signatures, stop_above) if g is not None})
