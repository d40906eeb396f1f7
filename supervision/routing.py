"""supervision.routing: who licenses, supervises — business scope → licensing departments and licences; clue industry → department."""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from supervision.errors import RoutingError

DATA_DIR = Path(__file__).resolve().parent / "data"
DEPARTMENTS_PATH = DATA_DIR / "departments.csv"
RULES_PATH = DATA_DIR / "licence_rules.csv"
INDUSTRIES_PATH = DATA_DIR / "clue_industries.csv"

MARKET_SUPERVISION = "market_supervision"
COMMAND_CENTRE = "command_centre"
# The high-frequency part of the 87-industry clue catalogue; the file may append the others.
HIGH_FREQUENCY_INDUSTRIES: tuple[str, ...] = (
    "餐饮服务",
    "食品销售",
    "食品小作坊",
    "烟草制品零售",
    "药品零售",
    "医疗诊所",
    "美容美发",
    "互联网上网服务",
    "歌舞娱乐",
    "旅馆住宿",
    "废旧物资回收",
    "机动车维修",
    "成品油零售",
    "危险化学品经营",
    "校外培训",
    "出版物零售",
    "五金塑胶加工作坊",
)

_CODE = re.compile(r"[a-z0-9_]{1,32}")
# Items end at ；; and newlines (and 。); these also close any bracket left open, because a bracket that runs
# past an item is a typing slip, and it keeps every item independent of the ones before it.
_ITEM_END = re.compile(r"[;；﹔\n\r。]")
_OPENERS = "([【〔〖"
_CLOSERS = ")]】〕〗"
_NEGATION_STARTS = ("不含", "不包含", "不包括", "不涉及", "不从事", "不经营", "不得", "除")
# Inside an item, ，,、 separate sub-items (after NFKC: "," and "、"); they bound the unbracketed negations:
# "不含X" up to the next sub-item or bracket, and "除X外" within one sub-item.
_BARE_NEGATION = re.compile(
    r"(?:不含|不包含|不包括|不涉及|不从事|不经营)[^,、()\[\]【】〔〕〖〗]*|除[^,、()\[\]【】〔〕〖〗]{1,30}?外"
)
_WHITESPACE = re.compile(r"[^\S\n]+")


@dataclass(frozen=True)
class Department:
    """A licensing or supervising department, by its login-scope code."""

    code: str
    name: str


@dataclass(frozen=True)
class LicenceRequirement:
    """A licence a business scope needs: the keyword that triggered it, from whom, and on what legal basis."""

    keyword: str
    department_code: str
    licence: str
    basis: str


def normalize_scope(text: str) -> str:
    """Fold full-width forms to half-width (NFKC) and drop spaces, so （） and () or ； and ; match alike."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


def _negated_spans(item: str) -> list[tuple[int, int]]:
    """Character spans of one item that say what the scope does NOT cover."""
    spans: list[tuple[int, int]] = []
    open_at: list[int] = []
    for i, char in enumerate(item):
        if char in _OPENERS:
            open_at.append(i)
        elif char in _CLOSERS and open_at:
            start = open_at.pop()
            if _negates(item[start + 1 : i]):
                spans.append((start, i + 1))
    # A bracket never closed negates to the end of the item (what its writer meant, most likely).
    spans.extend((start, len(item)) for start in open_at if _negates(item[start + 1 :]))
    spans.extend(m.span() for m in _BARE_NEGATION.finditer(item))
    return spans


def _negates(bracket_content: str) -> bool:
    """Whether bracketed text excludes what it names: （不含…）, （除…外）, （…除外）."""
    return bracket_content.startswith(_NEGATION_STARTS) or bracket_content.endswith("除外")


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row of a CSV file, checking its header; RoutingError if unreadable."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise RoutingError(f"{path} line 1: the header lacks column(s) {', '.join(missing)}")
            rows: list[tuple[int, dict[str, str]]] = []
            for row in reader:
                if None in row:
                    raise RoutingError(
                        f"{path} line {reader.line_num}: more fields than columns (quote a value that holds a comma)"
                    )
                rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RoutingError(f"{path}: cannot be read as a UTF-8 CSV file: {exc}") from exc


class Router:
    """The three routing tables, validated on load, and the business-scope matcher."""

    def __init__(
        self,
        departments_path: Path = DEPARTMENTS_PATH,
        rules_path: Path = RULES_PATH,
        industries_path: Path = INDUSTRIES_PATH,
    ) -> None:
        self._departments = self._load_departments(Path(departments_path))
        self._rules = self._load_rules(Path(rules_path))
        self._industries = self._load_industries(Path(industries_path))
        # Longest keyword first: the alternation then takes the longest keyword at the leftmost position,
        # so 小餐饮服务 beats 餐饮服务 and the exemption 预包装食品销售 beats 食品销售.
        ordered = sorted(self._rules, key=lambda k: (-len(k), k))
        self._pattern = re.compile("|".join(re.escape(k) for k in ordered)) if ordered else None
        # Entities share a few hundred scopes; routing each distinct one once makes bulk intake cheap.
        self._cached_requirements: Callable[[str], tuple[LicenceRequirement, ...]] = functools.lru_cache(maxsize=65536)(
            self._compute_requirements
        )

    # ------------------------------------------------------------------ loading

    @staticmethod
    def _load_departments(path: Path) -> dict[str, Department]:
        departments: dict[str, Department] = {}
        for line, row in _read_rows(path, ("code", "name", "basis")):
            code, where = row["code"], f"{path} line {line}"
            if not _CODE.fullmatch(code):
                raise RoutingError(f"{where}: department code {code!r} is not 1–32 characters of [a-z0-9_]")
            if code in departments:
                raise RoutingError(f"{where}: department {code} is listed twice")
            if not row["name"] or not row["basis"]:
                raise RoutingError(f"{where}: department {code} needs a name and a basis")
            departments[code] = Department(code, row["name"])
        for required in (MARKET_SUPERVISION, COMMAND_CENTRE):
            if required not in departments:
                raise RoutingError(f"{path}: department {required} is required")
        return departments

    def _known_department(self, code: str, where: str) -> str:
        if code not in self._departments:
            raise RoutingError(f"{where}: unknown department code {code!r}; known: {', '.join(self._departments)}")
        if code == COMMAND_CENTRE:
            raise RoutingError(f"{where}: {COMMAND_CENTRE} only receives severe clues; name a department")
        return code

    def _load_rules(self, path: Path) -> dict[str, LicenceRequirement]:
        rules: dict[str, LicenceRequirement] = {}
        for line, row in _read_rows(path, ("keyword", "department_code", "licence", "basis")):
            keyword, code, licence = row["keyword"], row["department_code"], row["licence"]
            where = f"{path} line {line} (keyword {keyword!r})"
            key = normalize_scope(keyword)
            if not key or _ITEM_END.search(key):
                raise RoutingError(f"{where}: a keyword must be non-empty and hold no ；; or newline")
            if key in rules:
                raise RoutingError(f"{where}: keyword listed twice (full- and half-width forms count as one)")
            if bool(code) != bool(licence):
                raise RoutingError(f"{where}: give both department_code and licence, or neither (an exemption)")
            if code:
                self._known_department(code, where)
            if not row["basis"]:
                raise RoutingError(f"{where}: every rule needs its legal basis")
            rules[key] = LicenceRequirement(keyword, code, licence, row["basis"])
        return rules

    def _load_industries(self, path: Path) -> dict[str, str]:
        industries: dict[str, str] = {}
        for line, row in _read_rows(path, ("industry", "department_code", "basis")):
            industry, where = row["industry"], f"{path} line {line} (industry {row['industry']!r})"
            if not industry or industry in industries:
                raise RoutingError(f"{where}: industry empty or listed twice")
            if not row["basis"]:
                raise RoutingError(f"{where}: every industry needs its basis")
            industries[industry] = self._known_department(row["department_code"], where)
        missing = [i for i in HIGH_FREQUENCY_INDUSTRIES if i not in industries]
        if missing:
            raise RoutingError(f"{path}: the high-frequency clue industries {'、'.join(missing)} are missing")
        return industries

    # ------------------------------------------------------------------ departments

    def departments(self) -> list[Department]:
        """Every department, in file order."""
        return list(self._departments.values())

    def department(self, code: str) -> Department:
        """The department of this code (RoutingError if unknown)."""
        found = self._departments.get(code)
        if found is None:
            raise RoutingError(f"unknown department {code!r}; known: {', '.join(self._departments)}")
        return found

    # ------------------------------------------------------------------ business scope

    def rules(self) -> list[LicenceRequirement]:
        """Every keyword rule that carries a licence, in file order (exemptions left out)."""
        return [r for r in self._rules.values() if r.department_code]

    def requirements(self, business_scope: str) -> list[LicenceRequirement]:
        """The licences a business scope needs, deduplicated by (department, licence), in order of appearance."""
        return list(self._cached_requirements(business_scope))

    def _compute_requirements(self, business_scope: str) -> tuple[LicenceRequirement, ...]:
        found: dict[tuple[str, str], LicenceRequirement] = {}
        if self._pattern is None:
            return ()
        for raw_item in _ITEM_END.split(business_scope):
            for rule in self._item_rules(normalize_scope(raw_item)):
                found.setdefault((rule.department_code, rule.licence), rule)
        return tuple(found.values())

    def _item_rules(self, item: str) -> Iterable[LicenceRequirement]:
        """The licence rules one item triggers, leftmost-longest, skipping keywords in negated text."""
        if not item or self._pattern is None:
            return
        negated = _negated_spans(item)
        for match in self._pattern.finditer(item):
            start = match.start()
            if any(a <= start < b for a, b in negated):
                continue
            rule = self._rules[match.group()]
            if rule.department_code:  # an exemption still wins over the shorter licensed keyword inside it
                yield rule

    def departments_for_scope(self, business_scope: str) -> list[str]:
        """The department codes whose licences the scope needs (several: one joint case), in order."""
        return list(dict.fromkeys(r.department_code for r in self.requirements(business_scope)))

    def needs_licence(self, business_scope: str) -> bool:
        """Whether the scope needs any licence."""
        return bool(self._cached_requirements(business_scope))

    # ------------------------------------------------------------------ clues

    def clue_industries(self) -> list[str]:
        """The clue industries, in file order."""
        return list(self._industries)

    def department_for_industry(self, industry: str) -> str:
        """The department that handles ordinary clues of this industry (RoutingError naming the valid ones)."""
        code = self._industries.get(industry)
        if code is None:
            raise RoutingError(f"unknown industry {industry!r}; choose one of {'、'.join(self._industries)}")
        return code

    def address_problem_department(self) -> str:
        """Where unresolved address problems go: the market supervision bureau."""
        return MARKET_SUPERVISION

    def command_centre(self) -> str:
        """The queue of severe clues."""
        return COMMAND_CENTRE


@functools.lru_cache(maxsize=1)
def default_router() -> Router:
    """The router from the shipped data files (call default_router.cache_clear() after editing them)."""
    return Router()
