"""Opaque, unique record ids.

Primary keys must be unique and must not leak the person behind a record (a matcher that could
read the person number out of `order_id` would score perfectly and prove nothing). A counter is
pushed through a bijection of [0, 10**digits): unique by construction, random-looking to a reader.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator


class OpaqueIds:
    """Yields unique ids like `W0493817262` from a counter scrambled by an affine bijection."""

    def __init__(self, prefix: str, digits: int, salt: int) -> None:
        self.prefix = prefix
        self.modulus = 10**digits
        self.digits = digits
        # Multiplier coprime with 10**digits (odd and not a multiple of 5) => bijection.
        multiplier = (salt * 2_654_435_761 + 7_919) % self.modulus
        while multiplier % 2 == 0 or multiplier % 5 == 0:
            multiplier += 1
        self.multiplier = multiplier
        self.offset = (salt * 40_503 + 12_345) % self.modulus
        self._counter: Iterator[int] = itertools.count()

    def next(self) -> str:
        n = next(self._counter)
        if n >= self.modulus:
            raise OverflowError(f"more than {self.modulus} ids with prefix {self.prefix!r}")
        # affine -> digit reversal -> affine: each step is a bijection, so is the whole.
        value = (n * self.multiplier + self.offset) % self.modulus
        value = int(f"{value:0{self.digits}d}"[::-1])
        value = (value * self.multiplier + self.offset * 3) % self.modulus
        return f"{self.prefix}{value:0{self.digits}d}"
