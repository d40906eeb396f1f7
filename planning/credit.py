"""planning.credit: an entity's credit class (信用风险分类 A 低 … D 高) and its reasons, from the facts of its records.

Pure: the service (`planning.credit_service`) gathers the facts in SQL. Each adverse fact adds the points of the
rules file (`planning/data/inspection_rules.toml`, [credit]); the class is the highest band the total reaches.
No points: A, unless the entity is younger than the new-entity months (B: no record yet to trust). Every class comes
with at least one reason. Monotone by construction: points are never negative, so an adverse fact more never
improves the class; deterministic: the reasons come in one fixed order.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from planning.ratios import CLASSES, RULES_PATH

# The adverse facts, in the order their reasons are listed, with what the pages call them.
FACT_LABELS_ZH: Mapping[str, str] = {
    "abnormal_list": "列入经营异常名录",
    "missing_licence": "缺少应有的许可证",
    "unresolved_finding": "检查发现问题未整改",
    "penalty": "受到行政处罚",
    "substantiated_clue": "线索经核实",
    "hotline_report": "热线投诉举报经核实",
}
CLEAN_LABELS_ZH: Mapping[str, str] = {"no_adverse_records": "无不良记录", "new_entity": "新设立市场主体"}
CLASS_LABELS_ZH: Mapping[str, str] = {"A": "信用风险低", "B": "信用风险一般", "C": "信用风险较高", "D": "信用风险高"}
ANNUAL_REPORT_DUE = (6, 30)  # 《企业信息公示暂行条例》第八条: the previous year's report by 30 June


@dataclass(frozen=True)
class CreditRules:
    """The [credit] rules of the file: version, least points per class, points per fact, windows, new-entity months."""

    version: str
    bands: Mapping[str, int]
    points: Mapping[str, int]
    penalty_months: int
    clue_months: int
    new_entity_months: int


@dataclass(frozen=True)
class EntityFacts:
    """What an entity's class is computed from, as of one day (counts are of open records inside their windows)."""

    uscc: str
    as_of: date
    registered_on: date
    abnormal_list: bool = False
    unresolved_findings: int = 0
    penalties: int = 0
    substantiated_clues: int = 0
    hotline_reports: int = 0
    missing_licence: bool = False


@dataclass(frozen=True)
class Reason:
    """Why an entity has its class: a code, its Chinese label and detail, and the points it adds (0 for clean ones)."""

    code: str
    label_zh: str
    detail_zh: str
    points: int


def _int_table(raw: Mapping[str, Any], name: str, keys: tuple[str, ...] | Mapping[str, str]) -> dict[str, int]:
    """One table of non-negative integers of the [credit] section, every key present."""
    table = raw.get(name)
    if not isinstance(table, Mapping):
        raise ValueError(f"inspection_rules.toml: [credit.{name}] is missing")
    out: dict[str, int] = {}
    for key in keys:
        value = table.get(key)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"inspection_rules.toml: [credit.{name}] {key} must be a non-negative integer")
        out[key] = value
    return out


def load_credit_rules(path: Path | None = None) -> CreditRules:
    """The credit rules of the packaged file (or of `path`), checked: bands rise B < C < D, every fact has points > 0."""
    raw = tomllib.loads((path or RULES_PATH).read_text(encoding="utf-8"))
    credit = raw.get("credit")
    if not isinstance(credit, Mapping):
        raise ValueError("inspection_rules.toml: [credit] is missing")
    bands = _int_table(credit, "bands", ("B", "C", "D"))
    points = _int_table(credit, "points", FACT_LABELS_ZH)
    windows = _int_table(credit, "windows", ("penalty_months", "clue_months"))
    new_entity = _int_table(credit, "new_entity", ("months",))
    if not (0 < bands["B"] < bands["C"] < bands["D"]):
        raise ValueError("inspection_rules.toml: [credit.bands] needs 0 < B < C < D")
    if any(p <= 0 for p in points.values()):
        raise ValueError("inspection_rules.toml: every adverse fact needs points > 0 (else it could not lower a class)")
    return CreditRules(
        version=str(raw["version"]),
        bands=bands,
        points=points,
        penalty_months=windows["penalty_months"],
        clue_months=windows["clue_months"],
        new_entity_months=new_entity["months"],
    )


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (clamped to the month's last day: 31 March − 1 → 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 - months
    year, month0 = divmod(index, 12)
    for last in (31, 30, 29, 28):
        try:
            return date(year, month0 + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def annual_report_filing_start(as_of: date) -> date:
    """1 January of the year in which the last report due as of `as_of` had to be filed (by its 30 June).

    The report of year Y is due between 1 January and 30 June of Y + 1 from entities registered by the end of Y; the
    last due one as of `as_of` is filed in the year of the last 30 June passed.
    """
    year = as_of.year if (as_of.month, as_of.day) > ANNUAL_REPORT_DUE else as_of.year - 1
    return date(year, 1, 1)


def owes_annual_report(registered_on: date, filed_on: date | None, as_of: date) -> bool:
    """Whether the entity is on the abnormal list as of `as_of`: registered before the last due report's year ended,
    and that report not filed (filing it, even late, takes the entity off the list)."""
    start = annual_report_filing_start(as_of)
    return registered_on < start and (filed_on is None or filed_on < start)


def _fact_reasons(facts: EntityFacts, rules: CreditRules) -> list[Reason]:
    """The reasons of every adverse fact the entity has, in the fixed order, with their points."""
    p = rules.points
    out: list[Reason] = []

    def add(code: str, count: int, detail: str) -> None:
        if count > 0:
            out.append(Reason(code, FACT_LABELS_ZH[code], detail, p[code] * count))

    add("abnormal_list", int(facts.abnormal_list), "未按期报送上一年度年度报告（每年 6 月 30 日前），列入经营异常名录")
    add("missing_licence", int(facts.missing_licence), "经营范围含需许可的项目，但未取得相应许可证")
    add("unresolved_finding", facts.unresolved_findings, f"{facts.unresolved_findings} 项检查发现的问题尚未整改完毕")
    add("penalty", facts.penalties, f"近 {rules.penalty_months} 个月受到 {facts.penalties} 次行政处罚")
    add(
        "substantiated_clue",
        facts.substantiated_clues,
        f"近 {rules.clue_months} 个月有 {facts.substantiated_clues} 条线索经核实存在问题",
    )
    add(
        "hotline_report",
        facts.hotline_reports,
        f"近 {rules.clue_months} 个月有 {facts.hotline_reports} 条热线投诉举报经核实存在问题",
    )
    return out


def class_of_points(points: int, *, new: bool, rules: CreditRules) -> str:
    """The class a total of points gives (D, C, B by their least points; none: A, or B for a new entity)."""
    for cls in ("D", "C", "B"):
        if points >= rules.bands[cls]:
            return cls
    return "B" if new else "A"


def classify(facts: EntityFacts, rules: CreditRules) -> tuple[str, tuple[Reason, ...]]:
    """The entity's class and its reasons (at least one, also for A)."""
    reasons = _fact_reasons(facts, rules)
    new = facts.registered_on > months_before(facts.as_of, rules.new_entity_months)
    cls = class_of_points(sum(r.points for r in reasons), new=new, rules=rules)
    if not reasons:
        if new:
            detail = f"成立于 {facts.registered_on.isoformat()}，不满 {rules.new_entity_months} 个月，尚无足够信用记录"
            reasons = [Reason("new_entity", CLEAN_LABELS_ZH["new_entity"], detail, 0)]
        else:
            detail = f"成立满 {rules.new_entity_months} 个月，无经营异常、未整改问题、处罚、经核实的线索或缺证记录"
            reasons = [Reason("no_adverse_records", CLEAN_LABELS_ZH["no_adverse_records"], detail, 0)]
    assert cls in CLASSES
    return cls, tuple(reasons)


def reasons_json(reasons: tuple[Reason, ...]) -> list[dict[str, object]]:
    """The reasons as stored in the history (credit_assessment.reasons) and answered by the API."""
    return [{"code": r.code, "label_zh": r.label_zh, "detail_zh": r.detail_zh, "points": r.points} for r in reasons]
