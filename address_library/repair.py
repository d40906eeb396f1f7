"""address_library.repair: put back what input-method slips hid from the parser — town and community names, the
words of the address's frame (居民委员会, 单元, 号楼), unit markers after numbers (3洞 → 3栋) and road endings
before them (安福璐11号 → 安福路11号).

The matcher reads a repaired text only when the text as typed gave no door-level answer, and keeps the repaired
reading only when it is finer; the number of characters changed goes into the answer's evidence, so the
calibrated confidence pays for every correction.
"""

from __future__ import annotations

import re
from functools import lru_cache

from address_library.gazetteer import Gazetteer, default_gazetteer
from address_library.slips import SlipLexicon, is_slip, lookalikes, primary_reading

# Number markers that follow a number (12号, 3栋, 5楼, 302室) and the endings that precede one (安福路11号).
# 弄 is left out: its second reading (long) is the reading of 龙, a place word.
UNIT_MARKERS = ("号", "栋", "座", "幢", "楼", "层", "室", "房", "期", "区", "巷", "组", "队", "档", "铺")
NAME_ENDINGS = ("路", "街", "道", "巷", "村", "围")
# The frame words of registered addresses, whose slips hide the names around them.
FRAME_WORDS = (
    "东莞市", "东莞", "广东省", "社区居民委员会", "居民委员会", "村民委员会", "委员会", "社区", "单元", "号楼", "工业区", "工业园", "产业园",
    "科技园", "花园", "小区", "公寓", "广场", "大厦", "市场", "新村", "大道", "商业城", "山庄", "家园",
)  # fmt: skip
_HAN = re.compile(r"[\u4e00-\u9fff]")
_NUMBER_LIKE = frozenset("0123456789零一二三四五六七八九十百")
_CN_NUMERALS = frozenset("零一二三四五六七八九十百")
# After a Chinese numeral only the markers people write after one (三队, 五组, 二巷, 七号): 七坊 stays a village.
_CN_UNIT_MARKERS = ("号", "栋", "座", "楼", "层", "巷", "组", "队", "期")
_LETTER = re.compile(r"[A-Z]")
_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")
_FORMAL_NUMERALS = dict(zip("壹贰叁肆伍陆柒捌玖拾", _NUMERALS, strict=True))
# The first character of the markers a numeral stands before.
_MARKER_STARTS = frozenset("号栋座幢楼层室巷组队期单坊")
_DIRECTIONS = frozenset("东南西北中")
# A numeral half put back (三十2号 after 狮 → 十 in 三狮二号, whose 二 normalization had already made 2).
_MIXED_NUMBER = re.compile(r"([一二三四五六七八九]?十)(\d)(?=[号栋座幢楼层室巷组队期])")
_CITY_PREFIX = re.compile(r"(?:广东省?|东莞市?)*")


def _before_marker(chars: list[str], j: int) -> bool:
    """Whether chars[j:] is a run of numerals (maybe empty) and then a unit marker or a sub-number (-1号)."""
    while j < len(chars) and chars[j] in _NUMBER_LIKE:
        j += 1
    if j + 1 < len(chars) and chars[j] == "-" and chars[j + 1].isdigit():
        return True
    return j < len(chars) and chars[j] in _MARKER_STARTS


class Repairer:
    """The lexicons of one gazetteer: its town and community forms, and the frame words."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        towns = {form: code for form, code in gazetteer.town_at_start.items()}
        self.towns = SlipLexicon(towns)
        # A form two communities share (None in the city table) is still a word: it names itself, so it is
        # never "repaired" into a neighbouring name, and its slips are put back to it.
        communities = {form: place.code if place else form for form, place in gazetteer.city.items()}
        self.places = SlipLexicon({**towns, **communities})
        self.frame = SlipLexicon(FRAME_WORDS, loose_from=4)

    def repair(self, text: str, names: SlipLexicon | None = None) -> str:
        """`text` (normalized) with slips in places, frame words and markers put back; unchanged when none.

        `names` adds the library's own names (natural villages, parks) to the words looked for.
        """
        chars = list(text)
        _markers(chars)
        out: list[str] = []
        i, n = 0, len(chars)
        if (
            n > 3
            and is_slip(chars[0], "市", strict=True)
            and self._opens_with_town(chars, 1)
            and not self._opens_with_town(chars, 0)
        ):
            i = 1  # 东莞柿樟木头… lost its 东莞 to normalization; the slip of 市 is left alone at the start
        while i < n:
            i += self._word_at(chars, i, out, names)
        return _MIXED_NUMBER.sub(_mixed_number, "".join(out))

    def _opens_with_town(self, chars: list[str], i: int) -> bool:
        for size in range(min(len(chars) - i, self.towns.longest), 1, -1):
            window = "".join(chars[i : i + size])
            if window in self.towns.words or (size > 2 and self.towns.slip_of(window)):
                return True
        return False

    def _word_at(self, chars: list[str], i: int, out: list[str], names: SlipLexicon | None) -> int:
        """Copy (or repair) the longest word starting at i into out; return how many characters it took."""
        if not _HAN.fullmatch(chars[i]):
            out.append(chars[i])
            return 1
        n = len(chars)
        longest = min(n - i, max(self.places.longest, self.frame.longest, names.longest if names else 0))
        for size in range(longest, 1, -1):
            window = "".join(chars[i : i + size])
            if not all(_HAN.fullmatch(c) for c in window):
                continue
            if window in self.places.words or window in self.frame.words or (names and window in names.words):
                out.append(window)
                return size
            word = self.frame.slip_of(window, short=True) or self.places.slip_of(window)
            if word is None and names is not None:
                word = names.slip_of(window)
            if word is None and size == 2 and _CITY_PREFIX.fullmatch("".join(out)):
                word = self.towns.slip_of(window, short=True)  # a short town name opens the address: 弧们 → 虎门
            if word is not None:
                out.append(word)
                return size
        out.append(chars[i])
        return 1


def _markers(chars: list[str]) -> None:
    """Unit markers after a number or a building letter (3洞 → 3栋, A懂 → A栋), endings before a number, and
    numerals before a marker (思巷 → 四巷, 贰号 → 二号)."""
    n = len(chars)
    for i, ch in enumerate(chars):
        if not _HAN.fullmatch(ch) or ch in _NUMBER_LIKE:
            continue
        if _before_marker(chars, i + 1) and ch not in UNIT_MARKERS and ch not in NAME_ENDINGS:
            numeral = _FORMAL_NUMERALS.get(ch) or _numeral_slip(ch)
            if numeral is not None:
                chars[i] = numeral  # 思巷 → 四巷, 伞十二号 → 三十二号
                continue
        before = chars[i - 1] if i > 0 else ""
        after = chars[i + 1] if i + 1 < n else ""
        if (before in _NUMBER_LIKE or before == "号") and after in _NUMBER_LIKE and is_slip(ch, "之", strict=True):
            chars[i] = "之"  # 15号芝2 → 15号之2
            continue
        if before in _DIRECTIONS and (after.isdigit() or _LETTER.fullmatch(after)) and is_slip(ch, "区", strict=True):
            chars[i] = "区"  # 东趣B3座 → 东区B3座
            continue
        if ch in UNIT_MARKERS or ch in NAME_ENDINGS:
            continue
        after_numeral = before in _NUMBER_LIKE and not (before in _CN_NUMERALS and ch in _DIRECTIONS)
        if after_numeral or (_LETTER.fullmatch(before) and (i < 2 or not _LETTER.fullmatch(chars[i - 2]))):
            marker = _one_slip(ch, _CN_UNIT_MARKERS if before in _CN_NUMERALS else UNIT_MARKERS)
            if marker is not None:
                chars[i] = marker  # 3洞 → 3栋, A懂 → A栋, 十三对 → 十三队
                continue
        if after.isdigit() and _HAN.fullmatch(before):
            marker = _one_slip(ch, NAME_ENDINGS)
            if marker is not None:
                chars[i] = marker  # 安福璐11号 → 安福路11号, 上坑七疥7号 → 上坑七街7号


def _mixed_number(match: re.Match[str]) -> str:
    tens = match.group(1)
    return str((_NUMERALS.index(tens[0]) + 1 if len(tens) == 2 else 1) * 10 + int(match.group(2)))


@lru_cache(maxsize=4096)
def _numeral_slip(char: str) -> str | None:
    """The numeral a character is a slip of, by its usual reading only (路 is not 六, though 六 reads lu too)."""
    found = [m for m in _NUMERALS if primary_reading(char) == primary_reading(m) or m in lookalikes(char)]
    return found[0] if len(found) == 1 else None


@lru_cache(maxsize=4096)
def _one_slip(char: str, markers: tuple[str, ...]) -> str | None:
    found = [m for m in markers if is_slip(char, m, strict=True)]
    return found[0] if len(found) == 1 else None


_CITY_WORDS = re.compile(r"(?:广东省?)?东莞市?$")


def town_first(text: str) -> str | None:
    """The text with a town written after the rest moved to the front (九门寨七路10号，虎门镇九门寨社区 → 虎门镇九门寨社区
    九门寨七路10号); None when no town stands after a number."""
    gazetteer = default_gazetteer()
    for found in gazetteer.town_anywhere_re.finditer(text):
        if found.start() == 0 or not any(c.isdigit() for c in text[: found.start()]):
            continue
        head = _CITY_WORDS.sub("", text[: found.start()])
        return text[found.start() :] + head
    return None


def towns_with_community_at_start(text: str) -> list[str]:
    """The towns that have a community whose name (in any form) opens the text."""
    gazetteer = default_gazetteer()
    ends = range(2, min(len(text), gazetteer.max_form) + 1)
    return [code for code, forms in gazetteer.local.items() if any(forms.get(text[:end]) for end in ends)]


@lru_cache(maxsize=1)
def default_repairer() -> Repairer:
    """The repairer of the default gazetteer (built once, in well under a second)."""
    return Repairer(default_gazetteer())
