"""Pressure units and their exact conversion to kPa.

A reading arrives as a decimal string with at most three decimals, so it is an
exact integer number of thousandths. Each factor below is an exact rational, so
``thousandths * NUM / DEN`` is one correctly rounded division (Python's int/int
true division is), which is what "converted exactly" means for a float field:
the stored kPa is the double nearest the true value, never off by a float
multiplication's extra rounding.
"""

from __future__ import annotations

from fractions import Fraction

#: kPa per unit, exact (1 atm = 101.325 kPa, 1 bar = 100 kPa, 1 psi = 6.894757 kPa,
#: 1 mmHg = 0.1333224 kPa, as the device protocols define them).
KPA_PER_UNIT: dict[str, Fraction] = {
    "KPA": Fraction(1),
    "ATM": Fraction("101.325"),
    "BAR": Fraction(100),
    "PSI": Fraction("6.894757"),
    "MMHG": Fraction("0.1333224"),
}

#: For a value given in thousandths of a unit: (numerator, denominator) to kPa.
MILLI_TO_KPA: dict[str, tuple[int, int]] = {
    unit: (f.numerator, f.denominator * 1000) for unit, f in KPA_PER_UNIT.items()
}

KPA_PER_ATM = 101.325

PRESSURE_UNITS = ("atm", "kPa", "bar", "psi")
"""What reports and exports show pressure in (the schema stores kPa)."""


def per_kpa(unit: str) -> float:
    """The factor from kPa to ``unit`` (one of ``PRESSURE_UNITS``)."""
    return float(1 / KPA_PER_UNIT[unit.upper()])


def milli_to_kpa(milli: int, unit: str) -> float:
    """Thousandths of ``unit`` to kPa, correctly rounded."""
    num, den = MILLI_TO_KPA[unit]
    return milli * num / den


def kpa_to_atm(kpa: float) -> float:
    """For display: CLI output and plots show atm by default."""
    return kpa / KPA_PER_ATM
