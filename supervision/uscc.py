"""supervision.uscc: the unified social credit code (统一社会信用代码, GB 32100-2015): check character and validation.

Layout of the 18 characters::

    9  1  441900  MA4W1234  X  Q
    |  |  |       |         |  +- check character over the first 17 (GB 32100, weights 3^i mod 31)
    |  |  |       +---------+--- organisation code body (GB 11714: 8 characters + its own mod-11 check)
    |  |  +--------------------- administrative division (6 digits, Dongguan is 441900)
    |  +------------------------ organisation category (1 = enterprise, 2 = individual business, ...)
    +--------------------------- registration authority (9 = market regulation, 5 = civil affairs, ...)

Canonical form: 18 upper-case characters from ``CHARSET``, no whitespace. ``is_valid_uscc`` accepts only the
canonical form (a stored code is either right or wrong); ``parse_uscc`` is the forgiving entry point for text
typed by people: it strips whitespace (including full-width spaces), folds full-width characters and lower case,
then validates. Only the final GB 32100 check character is verified, never the embedded organisation code's,
because codes issued to individual businesses and by some authorities do not carry a valid GB 11714 check.
"""

from __future__ import annotations

import re
import unicodedata

# GB 32100-2015 character set: the digits and the upper-case letters without I, O, Z, S, V (31 characters).
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {char: value for value, char in enumerate(CHARSET)}
# Weight of position i (0-based) is 3^i mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

# GB 11714-1997 organisation code: 8 body characters (digits and upper-case letters) then a mod-11 check.
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_CANONICAL = re.compile(f"[{CHARSET}]{{18}}")
_WHITESPACE = re.compile(r"\s+")


class InvalidCreditCode(ValueError):
    """A text is not a valid unified social credit code; ``reason`` says why in one word."""

    def __init__(self, code: str, reason: str, detail: str) -> None:
        super().__init__(f"invalid unified social credit code {code!r}: {detail}")
        self.code = code
        self.reason = reason


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a code."""
    if len(first17) != 17:
        raise InvalidCreditCode(first17, "length", f"need 17 characters to compute a check, got {len(first17)}")
    total = 0
    for position, char in enumerate(first17):
        value = _VALUE.get(char)
        if value is None:
            raise InvalidCreditCode(first17, "charset", f"character {char!r} at position {position + 1} is not allowed")
        total += value * WEIGHTS[position]
    return CHARSET[(31 - total % 31) % 31]


def organisation_code_check_char(body8: str) -> str:
    """The GB 11714 check character of an 8-character organisation code body ('0'-'9' or 'X')."""
    if len(body8) != 8:
        raise ValueError(f"an organisation code body has 8 characters, got {len(body8)}")
    total = 0
    for char, weight in zip(body8, ORG_CODE_WEIGHTS, strict=True):
        if char.isdigit() and char.isascii():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        else:
            raise ValueError(f"character {char!r} is not allowed in an organisation code")
        total += value * weight
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def is_valid_uscc(code: str) -> bool:
    """True when code is a canonical 18-character credit code whose GB 32100 check character matches."""
    if not isinstance(code, str) or _CANONICAL.fullmatch(code) is None:
        return False
    return uscc_check_char(code[:17]) == code[17]


def validate_uscc(code: str) -> str:
    """Return code unchanged when it is a valid canonical credit code, else raise InvalidCreditCode with the reason."""
    if not isinstance(code, str):
        raise InvalidCreditCode(str(code), "type", "not a string")
    if len(code) != 18:
        raise InvalidCreditCode(code, "length", f"need 18 characters, got {len(code)}")
    for position, char in enumerate(code):
        if char not in _VALUE:
            if char.isspace():
                raise InvalidCreditCode(code, "whitespace", f"whitespace at position {position + 1}")
            if char.islower():
                raise InvalidCreditCode(code, "case", f"lower-case {char!r} at position {position + 1}")
            raise InvalidCreditCode(code, "charset", f"character {char!r} at position {position + 1} is not allowed")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidCreditCode(code, "check", f"check character is {code[17]!r}, expected {expected!r}")
    return code


def normalize_uscc(text: str) -> str:
    """Fold what people type into the canonical form: NFKC (full-width → ASCII), no whitespace, upper case."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text)).upper()


def parse_uscc(text: str) -> str:
    """Normalise typed text and validate it; return the canonical code or raise InvalidCreditCode."""
    return validate_uscc(normalize_uscc(text))
