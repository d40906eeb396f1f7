"""address_library.normalize: raw address text → one canonical form (简体, half-width, Arabic numbers, no noise)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from address_library.errors import AddressInputError
from address_library.lexicon import COMPOUND_SUFFIXES, PARK_SUFFIXES

MAX_ADDRESS_CHARS = 500

_converter: Callable[[str], str] | None = None


def _t2s(text: str) -> str:
    """Traditional → simplified with OpenCC; the converter is built once, on first use."""
    global _converter
    if _converter is None:
        import opencc

        _converter = opencc.OpenCC("t2s").convert
    return _converter(text)


# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space → half-width; a translate table is ~10x faster
# than NFKC and leaves CJK compatibility forms alone.
_WIDTH: dict[int, str] = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)}
_WIDTH[0x3000] = " "
# Variant and look-alike characters OpenCC leaves as they are, and dash look-alikes.
_VARIANTS: dict[int, str] = {
    ord(k): v
    for k, v in {
        "邨": "村",
        "巿": "市",
        "衖": "弄",
        "厰": "厂",
        "裡": "里",
        "裏": "里",
        "—": "-",
        "–": "-",
        "―": "-",
        "－": "-",
        "‐": "-",
        "−": "-",
        "﹣": "-",
        "〇": "零",
        "○": "零",
        "\t": " ",
        "\n": " ",
        "\r": " ",
    }.items()
}
_TRANSLATE = {**_WIDTH, **_VARIANTS}

# Control characters (C0 except tab/newline/CR, DEL, C1), lone surrogates, U+FFFD (what undecodable bytes become)
# and non-characters mean binary or corrupted input, not an address someone typed.
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd\ufffe\uffff]")

_BRACKET = re.compile(r"[(\[{【〔〖（［「『《<]([^()\[\]{}【】〔〕〖〗（）［］「」『』《》<>]*)[)\]}】〕〗）］」』》>]")
_STRAY_BRACKETS = re.compile(r"[()\[\]{}【】〔〕〖〗（）［］「」『』《》<>]")
_SEPARATORS = re.compile(r"[\s,，;；、|/\\。]+")
# Whole tokens that mean "nothing here" in exported spreadsheets and delivery forms.
_NOISE_TOKENS = frozenset({"NULL", "NONE", "NAN", "N/A", "NA", "无", "暂无", "空", "-", "--", "/", "0", "不详", "未知"})
_NOISE_ANYWHERE = re.compile(r"NULL|(?:请|先|需)?电联|电话联系|送货上门|上门换新")
# Phone numbers (mobile, 0769-xxxxxxxx): no door, room or stall number has seven digits.
_PHONE = re.compile(r"(?:86-?)?\d{3,4}-\d{7,8}|\d{7,}")
_DIGIT_RUN = re.compile(r"\d{7}")
_BUILDING_HASH = re.compile(r"([0-9A-Z]+)#(?:楼|栋)?")
# 17F, 6F: an English floor mark after a one- or two-digit number (not inside a code such as B2F).
_FLOOR_F = re.compile(r"(?<![0-9A-Z])(\d{1,2})F(?![A-Z])")
_BRACKET_CHARS = frozenset("()[]{}【】〔〕〖〗（）［］「」『』《》<>")
_SEPARATOR_CHARS = frozenset(" \u3000,，;；、|/\\。")
_RELATIVE_CHARS = frozenset("对附旁隔周带往向进沿直走侧边面角后前里")
_CN_NUMERAL_CHARS = frozenset("零一二三四五六七八九十百千")
_PREFIX_STARTS = (
    "中",
    "广东",
    "东莞",
    "收",
    "送",
    "详",
    "联",
    "注",
    "通",
    "经",
    "办",
    "居",
    "地",
    "住",
    "现",
    "家",
    "寄",
)
_PUNCT = re.compile(r"[^\w-]|_")
_DASHES = re.compile(r"-+")
_LONE_DASH = re.compile(r"(?<![0-9A-Z])-|-(?![0-9A-Z])")

# Relative locations people add to an address; removed from the text but reported.
_RELATIVE = re.compile(
    r"斜对面|对面|附近|旁边|隔壁|周边|一带|"
    r"(?:往|向|进去|进|沿|直走|走)[东南西北前后左右里内]?(?:走)?(?:约|大约)?\d+(?:米|M|公里)(?:处|左右)?|"
    r"(?:东南|东北|西南|西北|[东南西北])侧|(?<=[路街道号口场园区站])旁|(?<=[口处])(?:东南|东北|西南|西北|[东南西北])角|"
    r"(?:东南|东北|西南|西北|[东南西北])(?:边|面|角)$|(?:后面|前面|里面|后门|前门)$"
)

_PREFIX = re.compile(
    r"^(?:中华人民共和国|中国|广东省|广东|东莞市(?!场)|东莞(?!路|街|大道|大桥|庄|市场|大厦|中心|港|生态园|滨海湾)"
    # The label of the form field it was copied from: 地址：, 收货地址, 住址, 家住, 送到…
    r"|(?:收货|送货|详细|联系|注册|通讯|通信|经营|办公|居住)?地址|住址|住所|现住|家住|送到|送至|寄到|寄至)"
)
# 东莞市 and 广东省 pasted in the middle (长安镇东莞市长安镇…) carry nothing either; 东莞市场 is a name.
_INNER_CITY = re.compile(r"广东省|广东(?=东莞)|东莞市(?!场)")

_CN_DIGIT = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
# Chinese numerals become Arabic only right before a unit marker, so 三元里, 十里铺 and 五星村 keep their names.
_UNIT_MARKERS = "号|栋|座|幢|楼|层|室|房|单元|期|区|巷|弄|队|组|档"
# Also before a sub-number (二十号-1, 四十-1号, 十七之2号, 三之二号): the door number is a number there too.
_CN_NUMBER = re.compile(rf"第?([零一二三四五六七八九十百千]+)(?={_UNIT_MARKERS}|-[0-9零一二三四五六七八九十]|之)")
_SUB_CN = re.compile(r"(\d+)号?之([一二三四五六七八九十]+|\d+)号?")
_SUB_DASH = re.compile(r"(\d+)号-(\d+)(?![0-9号栋座幢楼层室房单元期区巷弄队组档铺])")


@dataclass(frozen=True)
class Normalized:
    """A normalized address: main text, bracketed notes taken out of it, and the relative-location phrase if any."""

    text: str
    notes: tuple[str, ...] = ()
    relative: str | None = None


def validate(text: str) -> str:
    """The input stripped of outer whitespace; raises AddressInputError when empty, over-long or binary."""
    if not isinstance(text, str):
        raise AddressInputError(f"an address must be text, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise AddressInputError("the address is empty")
    if len(stripped) > MAX_ADDRESS_CHARS:
        raise AddressInputError(f"the address is longer than {MAX_ADDRESS_CHARS} characters")
    if _BAD_CHARS.search(stripped):
        raise AddressInputError("the address contains control or binary characters")
    return stripped


def cn_to_int(numeral: str) -> int | None:
    """一百二十三 → 123, 十 → 10, 一二零三 → 1203 (digit by digit); None when it is not a well-formed number."""
    if not numeral:
        return None
    if not any(ch in _CN_UNIT for ch in numeral):
        if all(ch in _CN_DIGIT for ch in numeral):
            return int("".join(str(_CN_DIGIT[ch]) for ch in numeral))
        return None
    total = 0
    digit: int | None = None
    last_unit = 10_000
    for ch in numeral:
        if ch in _CN_DIGIT:
            if digit is not None and digit != 0:
                return None
            digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            unit = _CN_UNIT[ch]
            if unit >= last_unit:
                return None
            total += (1 if digit is None else digit) * unit
            if digit == 0:
                return None
            digit = None
            last_unit = unit
        else:
            return None
    if digit:
        total += digit
    return total


def _arabic(match: re.Match[str]) -> str:
    value = cn_to_int(match.group(1))
    if value is None:
        return match.group(0)
    return str(value)


def _sub_number(match: re.Match[str]) -> str:
    sub = match.group(2)
    value = sub if sub.isdigit() else cn_to_int(sub)
    if value is None:
        return match.group(0)
    return f"{match.group(1)}-{value}号"


# A flat written compactly after the name of a compound or park: 嘉湾小区4-1-202 (building-unit-room), 4栋1-202 (unit-room).
_COMPACT_FLAT = re.compile(r"([A-Z]?\d{1,3})-(\d{1,2})-(\d{3,4})([室房号]?)(?![\d号栋座幢楼层单元室房-])")
_COMPLEX_ENDINGS = (*COMPOUND_SUFFIXES, *PARK_SUFFIXES, "苑", "庭", "府", "阁", "期", "区")
_COMPACT_UNIT_ROOM = re.compile(r"(?<=栋|座|幢)(\d{1,2})-(\d{3,4})(?=[室房号]?(?![\d号层单元室房-]))")


def _compact_flat(text: str) -> str:
    """Spell out a compact building-unit-room after a compound or park name (never after a road: 路12-3 is a door)."""

    def building(match: re.Match[str]) -> str:
        if not text[: match.start()].endswith(_COMPLEX_ENDINGS):
            return match.group(0)
        return f"{match.group(1)}栋{match.group(2)}单元{match.group(3)}{match.group(4) or '室'}"

    text = _COMPACT_FLAT.sub(building, text)
    return _COMPACT_UNIT_ROOM.sub(
        lambda m: f"{m.group(1)}单元{m.group(2)}" + ("" if text[m.end() : m.end() + 1] in ("室", "房", "号") else "室"),
        text,
    )


def _strip_relative(text: str) -> tuple[str, str | None]:
    """The text without its relative-position words (号旁, 对面…), and the first of them (None when there is none)."""
    if _RELATIVE_CHARS.isdisjoint(text):
        return text, None
    match = _RELATIVE.search(text)
    if not match:
        return text, None
    return _fixpoint(_RELATIVE, text), match.group(0)


def _fixpoint(pattern: re.Pattern[str], text: str, replacement: str = "") -> str:
    # Removing one match can join two halves into a new one (电电联联): repeat until nothing changes.
    while True:
        new = pattern.sub(replacement, text)
        if new == text:
            return text
        text = new


def split_notes(text: str) -> tuple[str, list[str]]:
    """Take bracketed notes out of text: ("长安镇长青路1号(上门)", …) → ("长安镇长青路1号", ["上门"])."""
    notes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        note = match.group(1).strip()
        if note:
            notes.append(note)
        return " "

    while True:
        new = _BRACKET.sub(keep, text)
        if new == text:
            break
        text = new
    return _STRAY_BRACKETS.sub(" ", text), notes


def _clean(text: str) -> tuple[str, tuple[str, ...], str | None, bool]:  # noqa: C901 - one pass of ordered clean-up rules; splitting it hides their order
    """One pass of the pipeline on validated text; the flag says whether something was cut out of the middle."""
    text = _t2s(text.translate(_TRANSLATE)).translate(_VARIANTS).upper()
    notes: list[str] = []
    if not _BRACKET_CHARS.isdisjoint(text):
        text, notes = split_notes(text)
    if "#" in text:
        text = _BUILDING_HASH.sub(r"\1栋", text)
    if "F" in text:
        text = _FLOOR_F.sub(r"\1楼", text)
    cut = False
    if not _SEPARATOR_CHARS.isdisjoint(text):
        tokens = [t for t in _SEPARATORS.split(text) if t]
        kept = [t for t in tokens if t not in _NOISE_TOKENS]
        cut = len(kept) != len(tokens)
        text = "".join(kept)
    stripped = _PUNCT.sub("", text)
    # Punctuation taken out can join a number and a mark (0×F → 0F): the next pass reads what it exposed.
    cut = cut or len(stripped) != len(text)
    text = stripped
    if "NULL" in text or "联" in text or "上门" in text:
        before = text
        text = _fixpoint(_NOISE_ANYWHERE, text)
        cut = cut or text != before
    if _DIGIT_RUN.search(text):
        before = text
        text = _fixpoint(_PHONE, text)
        cut = cut or text != before
    if "-" in text:
        text = _DASHES.sub("-", text)
        if not _CN_NUMERAL_CHARS.isdisjoint(text):
            text = _CN_NUMBER.sub(_arabic, text)  # 四十-1号: the dash sits between numbers once 四十 is 40
        text = _compact_flat(text)
        text = _SUB_DASH.sub(r"\1-\2号", text)
        text = _LONE_DASH.sub("", text)
    text, relative = _strip_relative(text)
    cut = cut or relative is not None
    if "广东省" in text or "东莞市" in text:
        text = _fixpoint(_INNER_CITY, text)
        cut = True
    if text.startswith(_PREFIX_STARTS):
        text = _fixpoint(_PREFIX, text)
    if not _CN_NUMERAL_CHARS.isdisjoint(text):
        text = _CN_NUMBER.sub(_arabic, text)
    if "之" in text:
        text = _SUB_CN.sub(_sub_number, text)
    if "-" in text:
        text = _LONE_DASH.sub("", _SUB_DASH.sub(r"\1-\2号", text))
    if relative is None:
        # 0之0旁 → 0-0号旁: the 号 a sub-number gains can expose a relative mark the first look could not see.
        text, relative = _strip_relative(text)
        cut = cut or relative is not None
    if text in _NOISE_TOKENS:
        text = ""
    return text, tuple(notes), relative, cut


def normalize_with_flags(text: str) -> Normalized:
    """Normalize text and keep what normalization takes out: bracketed notes and a relative-location phrase."""
    raw = validate(text)
    out, notes, relative, cut = _clean(raw)
    # Cutting noise out of the middle can expose more (a prefix behind a phone number, 电电联联): only then is
    # a second pass worth its cost, and it repeats until the text is stable, which makes normalize idempotent.
    while cut and out:
        again, more_notes, more_relative, cut = _clean(out)
        if again == out:
            break
        out = again
        notes += more_notes
        relative = relative or more_relative
    return Normalized(out, notes, relative)


def normalize(text: str) -> str:
    """The canonical form of an address: 東莞市長安鎮長青路一百二十三號 → 长安镇长青路123号. Idempotent."""
    return normalize_with_flags(text).text
