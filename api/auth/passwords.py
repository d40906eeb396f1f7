"""api.auth.passwords: the one password policy (accounts, password resets, any password change).

A password must be at least 12 characters, must not be the user name, and must not be on a common-password list:
the `passwords` frequency list shipped by the `zxcvbn` package (`zxcvbn.frequency_lists.FREQUENCY_LISTS`, the
30,000 most common passwords of leaked password corpora, kept by the zxcvbn project: github.com/dwolfhub/zxcvbn-python,
after Dropbox's zxcvbn), compared case-insensitively; and zxcvbn's own estimate (with the user name among the
words it knows) must reach MIN_STRENGTH_SCORE: 3 of 0-4, "safely unguessable: moderate protection from an offline
slow-hash scenario" (about 10^8 guesses); and it must hold at least MIN_DISTINCT_CHARS different characters (zxcvbn
rates a run of one rare character as strong). So `aaaaaaaaaaaa`, `qwertyuiopas` or `12341234123412` are refused with
zxcvbn's advice in the message.
"""

from __future__ import annotations

import functools

from api.auth.errors import WeakPassword

MIN_PASSWORD_CHARS = 12
MIN_STRENGTH_SCORE = 3
# zxcvbn scores a run of one rare character (outside its dictionaries' alphabets) as strong: a floor of distinct
# characters refuses every such run whatever the alphabet.
MIN_DISTINCT_CHARS = 5
# zxcvbn judges at most 72 characters (it refuses longer input): a longer password is judged on its first 72.
_SCORED_CHARS = 72


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


def check_password(password: str, username: str | None = None) -> None:
    """WeakPassword (with a Chinese and English message) unless `password` meets the policy."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(
            f"密码至少需要 {MIN_PASSWORD_CHARS} 个字符 (the password must be at least {MIN_PASSWORD_CHARS} characters)"
        )
    folded = password.casefold()
    if username is not None and folded == username.strip().casefold():
        raise WeakPassword("密码不能与用户名相同 (the password must not be the user name)")
    if len(set(folded)) < MIN_DISTINCT_CHARS:
        raise WeakPassword(
            f"密码至少需要 {MIN_DISTINCT_CHARS} 个不同的字符 (the password needs at least {MIN_DISTINCT_CHARS} "
            "different characters)"
        )
    if folded in _common_passwords():
        raise WeakPassword("密码过于常见，请换一个 (the password is on the list of common passwords; choose another)")
    _check_strength(password, username)


def _check_strength(password: str, username: str | None) -> None:
    from zxcvbn import zxcvbn

    words = [username.strip()] if username is not None and username.strip() else []
    estimate = zxcvbn(password[:_SCORED_CHARS], user_inputs=words)
    if estimate["score"] >= MIN_STRENGTH_SCORE:
        return
    feedback = estimate.get("feedback") or {}
    advice = " ".join(part for part in [feedback.get("warning") or "", *feedback.get("suggestions", [])] if part)
    raise WeakPassword(
        "密码太容易被猜中，请换一个更长、更少规律的密码 (the password is too easy to guess"
        + (f": {advice}" if advice else "")
        + ")"
    )
