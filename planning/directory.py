"""planning.directory: the departments' item lists and inspector directories as CSV — parse, validate, write.

Pure: no database. A file is read whole and every bad line is reported at once (line number, column, what is
wrong, in Chinese), so a department fixes its spreadsheet in one pass. Export and import round-trip exactly.

Cells a spreadsheet would run as a formula are defused on export: a value starting with = + - @ (or a tab or carriage
return) is written with one leading apostrophe (`supervision.export.defuse`, as every CSV export of gridgov), and a
value that itself starts with an apostrophe is written with one more. Import takes one leading apostrophe off every
cell, so `=SUM(A1)` is written `'=SUM(A1)`, `'abc` is written `''abc`, and both read back as they were.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from planning.errors import InvalidPlan
from supervision.export import defuse
from supervision.uscc import is_valid_uscc

ITEM_COLUMNS = (
    "code",
    "department_code",
    "name",
    "basis",
    "key",
    "entity_kinds",
    "industries",
    "licence_only",
    "service_minutes",
    "source",
)
INSPECTOR_COLUMNS = (
    "code",
    "department_code",
    "name",
    "qualifications",
    "home_grid_code",
    "office_name",
    "office_lon",
    "office_lat",
    "conflicts",
    "load_cap",
    "active",
)
ENTITY_KINDS = ("company", "individual")
KEY_ZH = {True: "重点", False: "一般"}
YES_NO_ZH = {True: "是", False: "否"}
SERVICE_MINUTES = (10, 120)
MAX_TEXT = 500

_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,48}")
_DEPARTMENT = re.compile(r"[a-z0-9_]{1,32}")
_INSPECTOR_CODE = re.compile(r"[A-Za-z0-9\-]{1,32}")
_GRID = re.compile(r"\d{15}")
_LIST_SPLIT = re.compile(r"[;；]")
_KIND_ALIASES = {"company": "company", "企业": "company", "individual": "individual", "个体工商户": "individual"}
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass(frozen=True)
class ItemRow:
    """One inspection item (检查事项) of a department's list."""

    code: str
    department_code: str
    name: str
    basis: str
    key: bool
    entity_kinds: tuple[str, ...]
    industries: tuple[str, ...]
    licence_only: bool
    service_minutes: int
    source: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InspectorRow:
    """One inspector (执法检查人员) of a department's directory."""

    code: str
    department_code: str
    name: str
    qualifications: tuple[str, ...]
    home_grid_code: str | None
    office_name: str
    office_lon: float
    office_lat: float
    conflicts: tuple[str, ...]
    load_cap: int | None
    active: bool
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Problem:
    """One bad cell or line of an imported file."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"第{self.line}行" + (f"“{self.column}”列" if self.column else "")
        return f"{where}：{self.message}"


class DirectoryFileError(InvalidPlan):
    """An item or inspector file that cannot be taken: every bad line is listed in `problems`."""

    default_reason = "invalid_directory"

    def __init__(self, problems: Sequence[Problem], *, what: str = "文件") -> None:
        # Plain dicts, so that the API's error body carries them as they are.
        self.problems: list[dict[str, Any]] = [
            {"line": p.line, "column": p.column, "detail": p.message} for p in problems
        ]
        shown = "；".join(str(p) for p in problems[:50])
        more = f"；另有{len(problems) - 50}处问题" if len(problems) > 50 else ""
        super().__init__(f"{what}有{len(problems)}处问题，整个文件未导入：{shown}{more}", reason=self.default_reason)


def decode(data: bytes) -> str:
    """The text of an uploaded CSV: UTF-8 with or without BOM (Excel), else GB18030 (older Chinese Excel)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise DirectoryFileError([Problem(0, "", "文件既不是UTF-8也不是GB18030编码，请另存为“CSV UTF-8”")]) from exc


# Charsets an upload may declare for Chinese text that is not UTF-8: GB18030 reads GBK and GB2312 as well.
GB_CHARSETS = frozenset({"gbk", "gb2312", "gb18030", "cp936", "euc-cn", "x-gbk"})


def to_utf8(data: bytes, charset: str | None) -> bytes:
    """An upload's bytes as UTF-8: as declared when it names a GB charset (short GBK text can pass for UTF-8), else
    as they are (`decode` then reads UTF-8 or GB18030); DirectoryFileError only for bytes the charset cannot read."""
    if charset is None or charset.strip().strip('"').lower() not in GB_CHARSETS:
        return data
    try:
        return data.decode("gb18030").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise DirectoryFileError(
            [Problem(0, "", f"文件声明为{charset}编码，但第{exc.start + 1}个字节无法按此编码读取")]
        ) from exc


class _Cells:
    """Reads the cells of one CSV line, collecting every problem instead of stopping at the first."""

    def __init__(self, line: int, record: dict[str, str], problems: list[Problem]) -> None:
        self.line = line
        self.record = record
        self.problems = problems

    def bad(self, column: str, message: str) -> None:
        self.problems.append(Problem(self.line, column, message))

    def text(self, column: str, *, required: bool = True, pattern: re.Pattern[str] | None = None) -> str:
        value = (self.record.get(column) or "").strip()
        if required and not value:
            self.bad(column, "不能为空")
        elif len(value) > MAX_TEXT:
            self.bad(column, f"超过{MAX_TEXT}个字符")
        elif value and pattern is not None and not pattern.fullmatch(value):
            self.bad(column, f"格式不对：“{value}”")
        return value

    def words(self, column: str, check: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
        raw = (self.record.get(column) or "").strip()
        out: list[str] = []
        for part in _LIST_SPLIT.split(raw):
            word = part.strip()
            if not word:
                continue
            message = check(word) if check else None
            if message:
                self.bad(column, message)
            elif word not in out:
                out.append(word)
        return tuple(out)

    def flag(self, column: str, labels: dict[bool, str]) -> bool:
        value = (self.record.get(column) or "").strip()
        if value == labels[True] or value.lower() in _TRUE:
            return True
        if value == labels[False] or value.lower() in _FALSE:
            return False
        self.bad(column, f"应为“{labels[True]}”或“{labels[False]}”，而不是“{value}”")
        return False

    def integer(self, column: str, low: int, high: int, *, required: bool) -> int | None:
        value = (self.record.get(column) or "").strip()
        if not value:
            if required:
                self.bad(column, "不能为空")
            return None
        try:
            number = int(value)
        except ValueError:
            self.bad(column, f"应为整数，而不是“{value}”")
            return None
        if not low <= number <= high:
            self.bad(column, f"应在{low}到{high}之间，而不是{number}")
            return None
        return number

    def number(self, column: str, low: float, high: float) -> float:
        value = (self.record.get(column) or "").strip()
        try:
            number = float(value)
        except ValueError:
            self.bad(column, f"应为数字，而不是“{value}”")
            return 0.0
        if not math.isfinite(number) or not low <= number <= high:
            self.bad(column, f"应在{low}到{high}之间，而不是“{value}”")
        return number


def _records(data: bytes, columns: Sequence[str], what: str) -> list[tuple[int, dict[str, str] | None]]:
    """(line number, cells) of every data line, None for a line with more cells than the header; a missing header
    or column refuses the file."""
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise DirectoryFileError([Problem(1, "", "文件为空，缺少表头")], what=what)
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DirectoryFileError([Problem(1, c, "表头缺少此列") for c in missing], what=what)
    rows: list[tuple[int, dict[str, str] | None]] = []
    # A record's line is where it starts (a quoted cell may span lines).
    previous = reader.line_num
    for cells in reader:
        line, previous = previous + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue  # blank lines (Excel leaves them at the end)
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            rows.append((line, None))
            continue
        rows.append((line, dict(zip(header, (_uncell(c) for c in cells), strict=False))))
    return rows


def _duplicates(rows: Sequence[tuple[int, str]], column: str, problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for line, code in rows:
        if code and code in seen:
            problems.append(Problem(line, column, f"编号“{code}”与第{seen[code]}行重复"))
        else:
            seen.setdefault(code, line)


def _check_kind(word: str) -> str | None:
    return None if word in _KIND_ALIASES else f"主体类型应为 company 或 individual，而不是“{word}”"


def _check_industry(word: str) -> str | None:
    return None if len(word) <= 40 else f"行业词“{word[:20]}…”过长"


def _check_item_code(word: str) -> str | None:
    return None if _CODE.fullmatch(word) else f"事项编号格式不对：“{word}”"


def _check_uscc(word: str) -> str | None:
    return None if is_valid_uscc(word) else f"“{word}”不是有效的统一社会信用代码（18位且校验位正确）"


def parse_items(data: bytes) -> list[ItemRow]:
    """The rows of an item-list CSV; every bad line refuses the whole file with its line number and column."""
    problems: list[Problem] = []
    rows: list[ItemRow] = []
    for line, record in _records(data, ITEM_COLUMNS, "事项清单"):
        if record is None:
            problems.append(Problem(line, "", "列数多于表头"))
            continue
        cells = _Cells(line, record, problems)
        before = len(problems)
        kinds = cells.words("entity_kinds", _check_kind)
        if not kinds and not any(p.line == line and p.column == "entity_kinds" for p in problems):
            cells.bad("entity_kinds", "至少填写一种主体类型（company;individual）")
        item = ItemRow(
            code=cells.text("code", pattern=_CODE),
            department_code=cells.text("department_code", pattern=_DEPARTMENT),
            name=cells.text("name"),
            basis=cells.text("basis"),
            key=cells.flag("key", KEY_ZH),
            entity_kinds=tuple(sorted({_KIND_ALIASES[k] for k in kinds}, key=ENTITY_KINDS.index)),
            industries=cells.words("industries", _check_industry),
            licence_only=cells.flag("licence_only", YES_NO_ZH),
            service_minutes=cells.integer("service_minutes", *SERVICE_MINUTES, required=True) or 0,
            source=cells.text("source"),
            line=line,
        )
        if len(problems) == before:
            rows.append(item)
    _duplicates([(r.line, r.code) for r in rows], "code", problems)
    if problems:
        raise DirectoryFileError(sorted(problems, key=lambda p: p.line), what="事项清单")
    return rows


def parse_inspectors(data: bytes) -> list[InspectorRow]:
    """The rows of an inspector-directory CSV; every bad line refuses the whole file with its line and column."""
    problems: list[Problem] = []
    rows: list[InspectorRow] = []
    for line, record in _records(data, INSPECTOR_COLUMNS, "执法人员名录"):
        if record is None:
            problems.append(Problem(line, "", "列数多于表头"))
            continue
        cells = _Cells(line, record, problems)
        before = len(problems)
        qualifications = cells.words("qualifications", _check_item_code)
        if not qualifications and not any(p.line == line and p.column == "qualifications" for p in problems):
            cells.bad("qualifications", "至少填写一个可检查的事项编号")
        row = InspectorRow(
            code=cells.text("code", pattern=_INSPECTOR_CODE),
            department_code=cells.text("department_code", pattern=_DEPARTMENT),
            name=cells.text("name"),
            qualifications=qualifications,
            home_grid_code=cells.text("home_grid_code", required=False, pattern=_GRID) or None,
            office_name=cells.text("office_name"),
            office_lon=cells.number("office_lon", -180.0, 180.0),
            office_lat=cells.number("office_lat", -90.0, 90.0),
            conflicts=cells.words("conflicts", _check_uscc),
            load_cap=cells.integer("load_cap", 1, 1000, required=False),
            active=cells.flag("active", YES_NO_ZH) if (record.get("active") or "").strip() else True,
            line=line,
        )
        if len(problems) == before:
            rows.append(row)
    _duplicates([(r.line, r.code) for r in rows], "code", problems)
    if problems:
        raise DirectoryFileError(sorted(problems, key=lambda p: p.line), what="执法人员名录")
    return rows


def _cell(value: str) -> str:
    """A cell as written: a would-be formula defused behind an apostrophe (`supervision.export.defuse`), and a value
    that itself starts with an apostrophe given a second one, so that import takes exactly one off every cell."""
    return "'" + value if value.startswith("'") else defuse(value)


def _uncell(value: str) -> str:
    """A cell as read: trimmed, and the one leading apostrophe that `_cell` (or a spreadsheet user) put there removed."""
    value = value.strip()
    return value[1:] if value.startswith("'") else value


def _write(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    # A BOM so that Excel opens the Chinese text as UTF-8; import accepts the file with or without it.
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def items_csv(rows: Iterable[ItemRow]) -> bytes:
    """An item-list CSV (UTF-8 with BOM, one row per item, sorted by code) that `parse_items` reads back."""
    return _write(
        ITEM_COLUMNS,
        (
            (
                r.code,
                r.department_code,
                r.name,
                r.basis,
                KEY_ZH[r.key],
                ";".join(r.entity_kinds),
                ";".join(r.industries),
                YES_NO_ZH[r.licence_only],
                str(r.service_minutes),
                r.source,
            )
            for r in sorted(rows, key=lambda r: r.code)
        ),
    )


def inspectors_csv(rows: Iterable[InspectorRow]) -> bytes:
    """An inspector-directory CSV (UTF-8 with BOM, sorted by code) that `parse_inspectors` reads back."""
    return _write(
        INSPECTOR_COLUMNS,
        (
            (
                r.code,
                r.department_code,
                r.name,
                ";".join(r.qualifications),
                r.home_grid_code or "",
                r.office_name,
                repr(r.office_lon),
                repr(r.office_lat),
                ";".join(r.conflicts),
                "" if r.load_cap is None else str(r.load_cap),
                YES_NO_ZH[r.active],
            )
            for r in sorted(rows, key=lambda r: r.code)
        ),
    )


TARGET_COLUMNS = ("item_code", "uscc", "name", "town_code", "grid_code")


def targets_csv(rows: Iterable[tuple[str, str, str, str | None, str | None]]) -> bytes:
    """The target directory as CSV (item code, credit code, name, town, grid; never the credit class)."""
    return _write(TARGET_COLUMNS, ((item, uscc, name, town or "", grid or "") for item, uscc, name, town, grid in rows))
