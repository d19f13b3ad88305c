"""The tags a lot report reads: what each takes, what it refuses and how the refusal
reads, and that the configuration page and the README say the same rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.sessions.tag_rules import (
    NUMBERS,
    TESTS,
    Number,
    TagError,
    check_tag,
    check_tags,
    number,
)
from drivers.errors import PvlogError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("test", ["burst", "compliance", "fatigue"])
def test_each_test_is_taken(test: str) -> None:
    check_tag("test", test)


@pytest.mark.parametrize("value", ["brust", "Burst", " burst", "", "leak"])
def test_any_other_test_is_refused_naming_the_three(value: str) -> None:
    with pytest.raises(TagError) as err:
        check_tag("test", value)
    assert str(err.value) == f"tag test={value!r}: must be burst, compliance or fatigue"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("rbp_atm", "14", 14.0),
        ("rbp_atm", " 14.5 ", 14.5),  # as a TOML file or a form may pad it
        ("rbp_atm", "100", 100.0),  # the top is in range
        ("nominal_atm", "8", 8.0),
        ("max_atm", "0.5", 0.5),
        ("fatigue_atm", "+12", 12.0),
        ("cycles", "1000", 1000.0),
        ("cycles", "1e3", 1000.0),
        ("cycles", "10000000", 10_000_000.0),
        ("hold_s", "30", 30.0),
        ("hold_s", "86400", 86_400.0),
        ("nominal_diameter_mm", "3.0", 3.0),
        ("diameter_tol_pct", "10", 10.0),
        ("replay_rate", ".5", 0.5),
    ],
)
def test_numbers_in_range_are_taken(key: str, value: str, expected: float) -> None:
    check_tag(key, value)
    assert number(key, value) == expected


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("rbp_atm", "fourteen", "tag rbp_atm='fourteen': must be a number above 0 and at most "
                                "100 atm"),
        ("rbp_atm", "14 atm", "tag rbp_atm='14 atm': must be a number above 0"),
        ("rbp_atm", "", "tag rbp_atm='': must be a number"),
        ("rbp_atm", "0", "tag rbp_atm='0': must be a number above 0"),
        ("rbp_atm", "-3", "tag rbp_atm='-3': must be"),
        ("rbp_atm", "100.01", "tag rbp_atm='100.01': must be a number above 0 and at most 100"),
        ("rbp_atm", "nan", "tag rbp_atm='nan': must be"),
        ("rbp_atm", "NaN", "tag rbp_atm='NaN': must be"),
        ("rbp_atm", "inf", "tag rbp_atm='inf': must be"),
        ("rbp_atm", "-inf", "tag rbp_atm='-inf': must be"),
        ("rbp_atm", "1e999", "tag rbp_atm='1e999': must be"),  # inf once read
        ("rbp_atm", "1_4", "tag rbp_atm='1_4': must be"),  # Python's float takes it; no page does
        ("rbp_atm", "\u0661\u0664", "must be"),  # Arabic-Indic 14: float takes it too
        ("rbp_atm", "0x10", "must be"),
        ("cycles", "2.5", "tag cycles='2.5': must be a whole number above 0 and at most "
                          "10000000"),
        ("cycles", "10000001", "at most 10000000"),
        ("hold_s", "86401", "tag hold_s='86401': must be a number above 0 and at most 86400 s"),
        ("nominal_diameter_mm", "0", "at most 100 mm"),
        ("diameter_tol_pct", "51", "at most 50 %"),
        ("replay_rate", "1001", "tag replay_rate='1001': must be a number above 0 and at most "
                                "1000"),
    ],
)  # fmt: skip
def test_numbers_out_of_range_or_not_numbers_are_refused(key: str, value: str, said: str) -> None:
    with pytest.raises(TagError) as err:
        check_tag(key, value)
    assert said in str(err.value)
    assert str(err.value).startswith(f"tag {key}=")
    with pytest.raises(TagError):
        number(key, value)


@pytest.mark.parametrize(("key", "meant"), [
    ("rpb_atm", "rbp_atm"),  # two letters swapped
    ("rbp_atmm", "rbp_atm"),  # one added
    ("rbpatm", "rbp_atm"),  # one dropped
    ("rbp-atm", "rbp_atm"),  # one changed
    ("RBP_ATM", "rbp_atm"),  # the report reads the key as written
    ("Lot", "lot"),
    ("cycle", "cycles"),
    ("lots", "lot"),  # a balloon out of its lot, unseen, were it taken
    ("l0t", "lot"),
    ("tset", "test"),
    ("speciman", "specimen"),
    ("hold_ss", "hold_s"),
])  # fmt: skip
def test_a_key_one_letter_from_a_checked_one_is_a_typo(key: str, meant: str) -> None:
    with pytest.raises(TagError) as err:
        check_tag(key, "14")
    assert str(err.value) == f"tag {key!r}: not a tag pvlog reads; did you mean {meant!r}?"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("operator", "alice"),
        ("bench", "3"),
        ("bench", "B1"),
        ("site", "lab1"),
        ("tester", "bob"),  # two letters more than test: a word of its own
        ("hold", "30"),
        ("step_atm", "1"),  # read by the live page, not by a lot report
        ("cycles_target", "10"),
        ("lot", "L7"),
        ("specimen", "b01"),
        ("retest", "leak at the hub"),
        ("exclude", "kinked in handling"),
    ],
)
def test_free_tags_and_good_values_are_taken(key: str, value: str) -> None:
    check_tag(key, value)


@pytest.mark.parametrize("key", ["lot", "specimen", "retest", "exclude"])
def test_a_name_or_a_reason_is_not_blank(key: str) -> None:
    with pytest.raises(TagError, match=rf"^tag {key}='  ': must not be blank$"):
        check_tag(key, "  ")


def test_a_session_s_tags_are_checked_together_first_bad_one_named() -> None:
    good = {"lot": "L7", "specimen": "b01", "test": "burst", "rbp_atm": "14", "bench": "3"}
    check_tags(good)
    with pytest.raises(TagError, match=r"^tag test='brust'"):
        check_tags({**good, "test": "brust", "cycles": "x"})


def test_a_tag_error_is_a_pvlog_error_and_a_value_error() -> None:
    """pydantic takes a ValueError as a key's refusal; the CLI says a PvlogError in one line."""
    assert issubclass(TagError, PvlogError) and issubclass(TagError, ValueError)
    assert TESTS == ("burst", "compliance", "fatigue")


def documented(numbers: dict[str, Number]) -> str:
    """The numeric rules as the pages write them: keys with the same rule together."""
    groups: dict[Number, list[str]] = {}
    for key, rule in numbers.items():
        assert rule.low == 0, "the pages say 'above 0' of every number"
        groups.setdefault(rule, []).append(key)
    parts = []
    for rule, keys in groups.items():
        unit = f" {rule.unit}" if rule.unit else ""
        whole = ", whole" if rule.whole else ""
        parts.append(f"{', '.join(f'`{k}`' for k in keys)} {rule.high:.15g}{unit}{whole}")
    return "numbers above 0 and at most: " + "; ".join(parts)


@pytest.mark.parametrize("page", ["docs/configuration.md", "README.md"])
def test_the_pages_say_the_rules_the_code_has(page: str) -> None:
    text = " ".join((ROOT / page).read_text().split())
    assert documented(NUMBERS) in text
    assert "`test` is `burst`, `compliance` or `fatigue`" in text
    assert "`lot`, `specimen`, `retest`" in text


def test_a_replay_at_full_speed_is_tagged_max() -> None:
    check_tag("replay_rate", "max")  # `pvlog replay --rate max --session NAME`
    with pytest.raises(TagError):
        check_tag("rbp_atm", "max")


@pytest.mark.parametrize("value", ["L7 ", " L7", "L7\u200b", "L\t7", "L\uff17"])
def test_a_lot_or_specimen_is_matched_exactly_so_no_hidden_spaces(value: str) -> None:
    for key in ("lot", "specimen"):
        with pytest.raises(TagError, match="no spaces around it, and plain ASCII"):
            check_tag(key, value)


def test_a_key_is_a_letter_then_letters_digits_or_underscores() -> None:
    with pytest.raises(TagError, match="a letter, then letters, digits or _"):
        check_tag("lot number", "7")
