"""address_library.slips: the typing slips of Chinese input methods — homophones and look-alike characters.

A pinyin input method offers every character of the typed syllable: a hurried writer picks 璐 for 路, 好 for 号 or
心 for 新. Handwriting recognition and stroke input confuse characters of similar shape (栋/冻, 楼/搂). Two
characters are a *slip* of each other when the usual toneless pinyin reading of one is a reading of the other
(pypinyin, heteronyms included) or they stand in one group of the look-alike list shipped in data/lookalike_chars.txt (its source is in the
file's header). Names that differ in any other character differ in sound and shape: they are other places.

Three uses:
- `slip_count` says whether a typed name is the library's name up to slips (and how many);
- `phonetic_keys` index names by sound, so a name with slips anywhere still finds its candidates;
- `SlipLexicon` finds the word a window of text is a slip of (address_library.repair uses it to put back the
  place names and generic words a slip hid from the parser).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources

from pypinyin import Style, pinyin

_HAN = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=65_536)
def readings(char: str) -> frozenset[str]:
    """Every toneless pinyin reading of one character (empty for what is not a Han character)."""
    if not _HAN.fullmatch(char):
        return frozenset()
    return frozenset(pinyin(char, style=Style.NORMAL, heteronym=True)[0])


@lru_cache(maxsize=65_536)
def primary_reading(char: str) -> str:
    """The usual toneless reading of a character; the character itself when it has none (digits, letters)."""
    if not _HAN.fullmatch(char):
        return char
    return pinyin(char, style=Style.NORMAL)[0][0]


@lru_cache(maxsize=1)
def _lookalike_table() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    path = resources.files("address_library") / "data" / "lookalike_chars.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        chars = [c for c in line.split() if len(c) == 1]
        for c in chars:
            groups.setdefault(c, set()).update(chars)
    return {c: frozenset(g - {c}) for c, g in groups.items()}


def lookalikes(char: str) -> frozenset[str]:
    """The characters listed as looking like this one."""
    return _lookalike_table().get(char, frozenset())


@lru_cache(maxsize=262_144)
def is_slip(typed: str, meant: str, *, strict: bool = False) -> bool:
    """Whether one character could have been typed for another: same sound (toneless) or look-alike shape.

    `strict` asks for the same usual reading: for the short generic words and markers, where a second reading
    (园 also reads wan, 六 also reads lu) would turn 嘉湾 into 家园 or 路 into 六.
    """
    if typed == meant:
        return False
    if strict:
        return primary_reading(typed) == primary_reading(meant) or meant in lookalikes(typed)
    # The usual reading of one must be a reading of the other: 张 for 长 (zhang), 吭 for 坑 (keng); two rare
    # readings that happen to meet (滑 and 家 both read gu somewhere) are not a slip anyone makes.
    sound = primary_reading(typed) in readings(meant) or primary_reading(meant) in readings(typed)
    return sound or meant in lookalikes(typed)


def slip_count(typed: str, name: str) -> int | None:
    """How many characters of `typed` are slips of `name`'s (0 when equal); None when they differ otherwise.

    Only substitutions count: a missing, extra or swapped character changes sound and shape, so the names are
    different places (龙景花园 is not 泰景花园, 堑头路 is not 堑头五路).
    """
    if len(typed) != len(name):
        return None
    slips = 0
    for a, b in zip(typed, name, strict=True):
        if a == b:
            continue
        if not is_slip(a, b):
            return None
        slips += 1
    return slips


def sound_only(typed: str, name: str) -> bool:
    """Whether every character that differs between two equal-length names is a slip of sound (not of shape)."""
    return all(
        a == b or primary_reading(a) in readings(b) or primary_reading(b) in readings(a)
        for a, b in zip(typed, name, strict=True)
    )


def phonetic_keys(name: str, limit: int = 8) -> list[str]:
    """Every key of a name by sound, one per combination of its characters' readings (长 is chang and zhang).

    Indexing a held name under all of them lets a slip typed through either reading find it by its usual key.
    """
    keys = [""]
    for char in name:
        options = sorted(readings(char)) or [char]
        if len(keys) * len(options) > limit:
            options = [primary_reading(char)]  # too many heteronyms: the usual reading only
        keys = [f"{k} {o}" if k else o for k in keys for o in options]
    return keys


class SlipLexicon:
    """Words (place names, generic address words) and the typed windows that are slips of them.

    A window of three or more characters is a slip of a word when one character differs by a slip (found
    through a masked key per position, one lookup each) or when every differing character shares its sound
    (found through the phonetic key). Two-character windows need `short=True` (the caller allows them only
    where a short name is expected). A window that is a slip of words naming two different things gives nothing.
    """

    def __init__(self, words: Iterable[str] | Mapping[str, str], *, loose_from: int | None = None) -> None:
        """words: the words, or word → what it names (words naming the same thing are not rivals).

        `loose_from`: windows at least this long may differ from a word in any one character (居民季员会): a long
        frame word is recognised by the rest of it, whatever the slip.
        """
        self.loose_from = loose_from
        names = dict(words) if isinstance(words, Mapping) else {w: w for w in words}
        self.names = {w: n for w, n in names.items() if len(w) >= 2}
        self.words = frozenset(self.names)
        self.longest = max((len(w) for w in self.words), default=0)
        self._by_sound: dict[str, set[str]] = {}
        self._by_mask: dict[str, set[str]] = {}
        for word in self.words:
            for key in phonetic_keys(word):
                self._by_sound.setdefault(key, set()).add(word)
            for i in range(len(word)):
                self._by_mask.setdefault(word[:i] + "\0" + word[i + 1 :], set()).add(word)

    def slip_of(self, window: str, *, short: bool = False) -> str | None:
        """The one word `window` is a slip of (None when it is a word itself, or no word, or several)."""
        if window in self.words or len(window) < 2 or (len(window) == 2 and not short):
            return None
        if len(window) == 2:
            # A two-character word: one character kept, the other a slip by its usual reading or its shape.
            pairs = (w for i in range(2) for w in self._by_mask.get(window[:i] + "\0" + window[i + 1 :], ()))
            short_found = {
                w for w in pairs if sum(is_slip(a, b, strict=True) for a, b in zip(window, w, strict=True)) == 1
            }
            return min(short_found) if len({self.names[w] for w in short_found}) == 1 else None
        found = {w for key in phonetic_keys(window) for w in self._by_sound.get(key, ()) if slip_count(window, w)}
        for i, char in enumerate(window):
            loose = self.loose_from is not None and len(window) >= self.loose_from
            for word in self._by_mask.get(window[:i] + "\0" + window[i + 1 :], ()):
                if loose or is_slip(char, word[i]):
                    found.add(word)
        if len({self.names[w] for w in found}) != 1:
            return None
        # Several forms of the one place (虎门镇, and 湖门镇 from the alias table): the closest to what was typed.
        return min(found, key=lambda w: (sum(a != b for a, b in zip(w, window, strict=True)), w))
