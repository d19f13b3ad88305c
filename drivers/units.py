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

_G = Fraction("9.80665")
"""Standard gravity, m/s² (CGPM 1901): the conventional water and mercury columns,
and kilogram-force, are defined with it."""
_MMHG = Fraction("0.133322387415")
"""kPa: the conventional millimetre of mercury (13595.1 kg/m³ x g), NIST SP 811."""

#: kPa per unit for instruments described in config (``lines``, ``modbus``): every
#: pressure unit a lab indicator shows, each an exact rational by its definition
#: (NIST SP 811, Appendix B.8). The device protocols' own units stay in ``KPA_PER_UNIT``
#: (the PVS defines its mmHg as 0.1333224 kPa; its golden vectors depend on it).
LAB_UNITS: dict[str, Fraction] = {
    "Pa": Fraction(1, 1000),
    "hPa": Fraction(1, 10),
    "kPa": Fraction(1),
    "MPa": Fraction(1000),
    "mbar": Fraction(1, 10),
    "bar": Fraction(100),
    "psi": Fraction("0.45359237") * _G / Fraction("0.0254") ** 2 / 1000,  # lbf/in²
    "atm": Fraction("101.325"),
    "torr": Fraction("101.325") / 760,
    "mmHg": _MMHG,
    "inHg": _MMHG * Fraction("25.4"),
    "inH2O": _G * Fraction("25.4") / 1000,  # 1000 kg/m³ x g x 25.4 mm
    "cmH2O": _G / 100,
    "mmH2O": _G / 1000,
    "kgf/cm2": _G * 10,  # 1 kgf / 1 cm² = 98.0665 kPa (the technical atmosphere)
}
_SPELLINGS = {
    "millibar": "mbar",
    "mb": "mbar",
    "inwc": "inH2O",
    "inh2o": "inH2O",
    '"h2o': "inH2O",
    "cmwc": "cmH2O",
    "mmwc": "mmH2O",
    "kg/cm2": "kgf/cm2",
    "kgf/cm2": "kgf/cm2",
    "ksc": "kgf/cm2",
    "at": "kgf/cm2",
    "mmhg": "mmHg",
    "torr": "torr",
    "inhg": "inHg",
    "pa": "Pa",
    "lb/in2": "psi",
}


def lab_unit(name: str) -> str | None:
    """A unit as an instrument writes it (``MBAR``, ``mBar``, ``inWC``, ``kg/cm²``) as
    ``LAB_UNITS`` names it; None for a unit pvlog does not know. Case does not count:
    ``mPa`` is read as ``MPa``, as no pressure indicator shows millipascals."""
    key = name.strip().replace(" ", "").replace("²", "2").lower()
    return _SPELLINGS.get(key) or _LOWER.get(key)


_LOWER = {u.lower(): u for u in LAB_UNITS}

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
