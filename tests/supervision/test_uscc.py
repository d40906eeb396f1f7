"""Unified social credit codes (GB 32100-2015): the check character catches typing slips, intake folds sloppy text."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervision.uscc import (
    CHARSET,
    WEIGHTS,
    InvalidCreditCode,
    is_valid_uscc,
    normalize_uscc,
    organisation_code_check_char,
    parse_uscc,
    uscc_check_char,
    validate_uscc,
)
from synthetic.entities import random_uscc

first17s = st.text(alphabet=CHARSET, min_size=17, max_size=17)


def test_charset_and_weights_follow_the_standard() -> None:
    assert len(CHARSET) == 31
    assert not set("IOZSV") & set(CHARSET)
    # 3^i mod 31 for i = 0..16, as listed in the standard's table.
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_hand_computed_codes_are_valid() -> None:
    # 9 1 4 4 1 9 0…0: 9·1 + 1·3 + 4·9 + 4·27 + 1·19 + 9·26 = 409; 409 mod 31 = 6; 31 − 6 = 25 → 'R'.
    assert uscc_check_char("91441900000000000") == "R"
    assert is_valid_uscc("91441900000000000R")
    # Add M (21) at position 9 (weight 20) and A (10) at position 10 (weight 29): 409 + 420 + 290 = 1119;
    # 1119 mod 31 = 3; 31 − 3 = 28 → 'W'.
    assert is_valid_uscc("91441900MA0000000W")
    # A last digit 2 at weight 28 makes 409 + 56 = 465 = 15·31, so the check is (31 − 0) mod 31 = 0 → '0'.
    assert is_valid_uscc("914419000000000020")
    # The same bodies with any other check character are wrong.
    assert not is_valid_uscc("91441900000000000Q")
    assert not is_valid_uscc("91441900MA0000000X")


def test_hand_computed_organisation_code_checks() -> None:
    # GB 11714: weights 3 7 9 10 5 8 4 2; 1·3 + 2·7 + 3·9 + 4·10 + 5·5 + 6·8 + 7·4 + 8·2 = 201; 201 mod 11 = 3 → 11 − 3 = 8.
    assert organisation_code_check_char("12345678") == "8"
    # M = 22, A = 10: 66 + 70 = 136; 136 mod 11 = 4 → 7.
    assert organisation_code_check_char("MA000000") == "7"
    # 4·3 = 12; 12 mod 11 = 1 → 10 → 'X'; a zero sum gives 11 → '0'.
    assert organisation_code_check_char("40000000") == "X"
    assert organisation_code_check_char("00000000") == "0"


@given(first17s)
def test_every_completed_code_is_valid(first17: str) -> None:
    assert is_valid_uscc(first17 + uscc_check_char(first17))


@given(
    st.integers(0, 2**32 - 1), st.sampled_from(["company", "individual"]), st.dates(date(1990, 1, 1), date(2030, 1, 1))
)
def test_every_generated_synthetic_code_is_valid(seed: int, kind: str, registered_on: date) -> None:
    code = random_uscc(kind, registered_on, random.Random(seed))
    assert is_valid_uscc(code)
    assert code[:2] == ("91" if kind == "company" else "92")
    assert code[2:6] == "4419"
    assert organisation_code_check_char(code[8:16]) == code[16], "the embedded organisation code is well formed too"


@given(first17s, st.integers(0, 16), st.integers(1, 30))
def test_any_single_character_slip_is_caught(first17: str, position: int, shift: int) -> None:
    code = first17 + uscc_check_char(first17)
    wrong = CHARSET[(CHARSET.index(code[position]) + shift) % 31]
    slipped = code[:position] + wrong + code[position + 1 :]
    assert not is_valid_uscc(slipped)
    with pytest.raises(InvalidCreditCode) as info:
        validate_uscc(slipped)
    assert info.value.reason == "check"


@given(first17s, st.integers(0, 15))
def test_swapping_two_neighbouring_characters_is_caught(first17: str, position: int) -> None:
    code = first17 + uscc_check_char(first17)
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    assert is_valid_uscc(swapped) == (swapped == code)


@given(first17s, st.sampled_from([" ", "\t", "\u3000"]), st.integers(0, 18))
def test_stored_codes_must_be_canonical_but_typed_ones_are_folded(first17: str, space: str, position: int) -> None:
    code = first17 + uscc_check_char(first17)
    sloppy = (code[:position] + space + code[position:]).lower()
    assert not is_valid_uscc(sloppy)
    assert parse_uscc(sloppy) == code
    assert normalize_uscc(f"  {code.lower()}\n") == code


def test_full_width_characters_typed_on_a_chinese_keyboard_are_folded() -> None:
    code = "91441900MA0000000W"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    assert not is_valid_uscc(full_width)
    assert parse_uscc(full_width) == code


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("91441900MA000000W", "length"),
        ("91441900MA0000000W1", "length"),
        ("91441900MA00000O0W", "charset"),  # the letter O is not in the charset
        ("91441900ma0000000W", "case"),
        ("91441900 A0000000W", "whitespace"),
        ("91441900MA0000000X", "check"),
    ],
)
def test_invalid_codes_say_why(text: str, reason: str) -> None:
    assert not is_valid_uscc(text)
    with pytest.raises(InvalidCreditCode) as info:
        validate_uscc(text)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_the_letters_left_out_of_the_charset_never_validate_even_after_folding() -> None:
    with pytest.raises(InvalidCreditCode) as info:
        parse_uscc("91441900MA0000000S")
    assert info.value.reason == "charset"
    with pytest.raises(InvalidCreditCode):
        uscc_check_char("91441900MA000000I")


def test_non_strings_are_rejected() -> None:
    assert not is_valid_uscc(None)  # type: ignore[arg-type]
    assert not is_valid_uscc(914419000000000020)  # type: ignore[arg-type]
