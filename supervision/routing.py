"""supervision.routing: who licenses, supervises — business scope → licensing departments and licences; clue industry → department.

Three editable data files (supervision/data, described in its README):
- departments.csv: the departments, by a short ASCII code (a department officer's login scope);
- licence_rules.csv: business-scope keywords → the department and the licence they need, with the legal basis;
  a rule with no department is an exemption (预包装食品销售 only needs a filing), so the longer keyword wins
  over the licensed one inside it;
- clue_industries.csv: the 17 high-frequency clue industries → the department that handles their clues.

Matching is leftmost-longest over the whole scope text, and a keyword inside a negating bracket
(（不含危险化学品）, (除…外)) does not count.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
DEPARTMENTS_PATH = DATA_DIR / "departments.csv"
RULES_PATH = DATA_DIR / "licence_rules.csv"
INDUSTRIES_PATH = DATA_DIR / "clue_industries.csv"
CODE_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
# Brackets whose content says what the scope does NOT include: keywords inside them are not licensed activities.
_NEGATION = re.compile(r"[（(]\s*(?:不含|不包括|除|仅销售预包装)[^）)]*[）)]")
MARKET_SUPERVISION = "market_supervision"
COMMAND_CENTRE = "command_centre"
EXPECTED_INDUSTRIES = 17


class RoutingError(ValueError):
    """An unknown department or industry, or a data file that does not hold together."""


@dataclass(frozen=True)
class Department:
    """A licensing or supervising department."""

    code: str
    name: str


@dataclass(frozen=True)
class LicenceRequirement:
    """A licence a business scope needs, from whom, and why."""

    keyword: str
    department_code: str
    licence: str
    basis: str


@dataclass(frozen=True)
class _Rule:
    keyword: str
    department_code: str
    licence: str
    basis: str

    @property
    def is_exemption(self) -> bool:
        return not self.department_code


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise RoutingError(f"{path.name}: the header lacks {', '.join(missing)}")
        return [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}) for row in reader]


class Router:
    """The routing tables, validated, with the scope matcher."""

    def __init__(
        self,
        departments_path: Path = DEPARTMENTS_PATH,
        rules_path: Path = RULES_PATH,
        industries_path: Path = INDUSTRIES_PATH,
    ) -> None:
        self._departments: dict[str, Department] = {}
        for line, row in _rows(departments_path, ("code", "name", "basis")):
            code = row["code"]
            if not CODE_PATTERN.fullmatch(code):
                raise RoutingError(f"{departments_path.name} line {line}: code {code!r} is not [a-z0-9_]{{1,32}}")
            if code in self._departments:
                raise RoutingError(f"{departments_path.name} line {line}: department {code} listed twice")
            if not row["name"]:
                raise RoutingError(f"{departments_path.name} line {line}: department {code} has no name")
            self._departments[code] = Department(code, row["name"])
        for required in (MARKET_SUPERVISION, COMMAND_CENTRE):
            if required not in self._departments:
                raise RoutingError(f"{departments_path.name}: department {required} is required")

        self._rules: dict[str, _Rule] = {}
        for line, row in _rows(rules_path, ("keyword", "department_code", "licence", "basis")):
            keyword, code = row["keyword"], row["department_code"]
            where = f"{rules_path.name} line {line}"
            if not keyword:
                raise RoutingError(f"{where}: empty keyword")
            if keyword in self._rules:
                raise RoutingError(f"{where}: keyword {keyword} listed twice")
            if code and code not in self._departments:
                raise RoutingError(f"{where}: unknown department code {code!r}")
            if bool(code) != bool(row["licence"]):
                raise RoutingError(f"{where}: a rule names both a department and a licence, or neither (exemption)")
            if not row["basis"]:
                raise RoutingError(f"{where}: keyword {keyword} has no basis")
            self._rules[keyword] = _Rule(keyword, code, row["licence"], row["basis"])
        # Longest first: the regex alternation then takes the longest keyword at the leftmost position.
        ordered = sorted(self._rules, key=lambda k: (-len(k), k))
        self._pattern = re.compile("|".join(re.escape(k) for k in ordered)) if ordered else None

        self._industries: dict[str, str] = {}
        for line, row in _rows(industries_path, ("industry", "department_code", "basis")):
            where = f"{industries_path.name} line {line}"
            if row["department_code"] not in self._departments:
                raise RoutingError(f"{where}: unknown department code {row['department_code']!r}")
            if row["industry"] in self._industries:
                raise RoutingError(f"{where}: industry {row['industry']} listed twice")
            self._industries[row["industry"]] = row["department_code"]
        if len(self._industries) < EXPECTED_INDUSTRIES:
            raise RoutingError(
                f"{industries_path.name}: {len(self._industries)} industries; the catalogue's "
                f"{EXPECTED_INDUSTRIES} high-frequency ones are required"
            )
        self.requirements = functools.lru_cache(maxsize=65536)(self._requirements)

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

    def rule_count(self) -> int:
        """How many keyword rules (licences and exemptions) the table holds."""
        return len(self._rules)

    # ------------------------------------------------------------------ business scope

    def _requirements(self, business_scope: str) -> list[LicenceRequirement]:
        """The licences a business scope needs, deduplicated by (department, licence), in order of appearance."""
        if self._pattern is None or not business_scope:
            return []
        negated = [m.span() for m in _NEGATION.finditer(business_scope)]
        out: dict[tuple[str, str], LicenceRequirement] = {}
        for match in self._pattern.finditer(business_scope):
            start = match.start()
            if any(a <= start < b for a, b in negated):
                continue
            rule = self._rules[match.group()]
            if rule.is_exemption:
                continue
            key = (rule.department_code, rule.licence)
            if key not in out:
                out[key] = LicenceRequirement(rule.keyword, rule.department_code, rule.licence, rule.basis)
        return list(out.values())

    def departments_for_scope(self, business_scope: str) -> list[str]:
        """The department codes whose licence the scope needs (several: one joint case), in order."""
        return list(dict.fromkeys(r.department_code for r in self.requirements(business_scope)))

    def needs_licence(self, business_scope: str) -> bool:
        """Whether the scope needs any licence."""
        return bool(self.requirements(business_scope))

    # ------------------------------------------------------------------ clues

    def clue_industries(self) -> list[str]:
        """The clue industries, in file order."""
        return list(self._industries)

    def department_for_industry(self, industry: str) -> str:
        """The department that handles ordinary clues of this industry (RoutingError if unknown)."""
        code = self._industries.get(industry)
        if code is None:
            raise RoutingError(f"unknown industry {industry!r}; choose one of {'、'.join(self._industries)}")
        return code

    def address_problem_department(self) -> str:
        """Unresolved address problems go to the market supervision bureau."""
        return MARKET_SUPERVISION

    def command_centre(self) -> str:
        """The queue of severe clues."""
        return COMMAND_CENTRE


@functools.lru_cache(maxsize=1)
def default_router() -> Router:
    """The router from the shipped data files (call default_router.cache_clear() after editing them)."""
    return Router()
