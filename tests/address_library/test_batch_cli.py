"""An analyst geocodes a spreadsheet of registrations with `gridgov geocode`: every row comes back, in order."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from address_library.service import ANSWER_FIELDS, Geocoder
from api.cli import app
from gis.database import make_engine
from gis.settings import DatabaseSettings

pytestmark = pytest.mark.db

CLI_ROWS = 3_000
BLANK = ""
CONTROL = "长安镇振隆路\x071号"
TOO_LONG = "长安镇振隆路" * 100  # 600 characters
BAD_ROWS = {
    "blank": BLANK,
    "control": CONTROL,
    "too-long": TOO_LONG,
    "only-spaces": "   ",
    "nul": "长安镇\x00振隆路1号",
}
BAD_AT = (10, 1_000, 2_000, 2_500, 2_999)  # after which registration each bad row goes


@pytest.fixture(scope="module")
def registrations(db: DatabaseSettings) -> list[dict[str, Any]]:
    """Every entity of the template city: its noisy registered address and the truth behind it."""
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.uscc, e.raw_address, t.address_id, t.noise, a.grid_code FROM entity e "
                "JOIN synthetic.entity_truth t ON t.uscc = e.uscc JOIN address a ON a.id = t.address_id "
                "ORDER BY e.uscc"
            )
        ).mappings()
        out = [dict(r) for r in rows]
    engine.dispose()
    assert len(out) >= 10_000
    return out


@pytest.fixture(scope="module")
def geocoder(db: DatabaseSettings) -> Iterator[Geocoder]:
    engine = make_engine(db)
    with engine.connect() as conn:
        yield Geocoder.load(conn)
    engine.dispose()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `gridgov geocode` keeps the index store of the test city (not the developer's .gridgov/index)."""
    return tmp_path_factory.mktemp("index")


@pytest.fixture(autouse=True)
def _store_in_index_dir(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDGOV_INDEX_DIR", str(index_dir))


def gridgov(db: DatabaseSettings, *args: str) -> Result:
    """Run `gridgov ARGS` against the test database."""
    return CliRunner().invoke(app, list(args), env={"GRIDGOV_DATABASE_URL": db.database_url})


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def spreadsheet(registrations: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CSV of registrations (uscc, address, note) with bad rows scattered through it."""
    rows: list[dict[str, str]] = []
    for i, r in enumerate(registrations[:CLI_ROWS]):
        # Notes with commas, quotes and line breaks must survive the round trip untouched.
        rows.append(
            {"uscc": r["uscc"], "address": r["raw_address"], "note": f'第{i}行, "备注"\n第二行' if i % 7 == 0 else ""}
        )
        if i in BAD_AT:
            kind = list(BAD_ROWS)[BAD_AT.index(i)]
            rows.append({"uscc": f"bad-{kind}", "address": BAD_ROWS[kind], "note": kind})
    path = tmp_path_factory.mktemp("batch") / "registrations.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["uscc", "address", "note"])
        writer.writeheader()
        writer.writerows(rows)
    truth = {r["uscc"]: r for r in registrations[:CLI_ROWS]}
    return {"path": path, "rows": rows, "truth": truth}


def test_every_row_comes_back_in_order_with_the_answer_columns(
    db: DatabaseSettings, spreadsheet: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "geocoded.csv"
    result = gridgov(db, "geocode", str(spreadsheet["path"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "rows written" in result.output
    with out.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["uscc", "address", "note", *ANSWER_FIELDS]
    written = read_csv(out)
    sent = spreadsheet["rows"]
    assert len(written) == len(sent)
    for row_in, row_out in zip(sent, written, strict=True):
        assert (row_out["uscc"], row_out["address"], row_out["note"]) == (
            row_in["uscc"],
            row_in["address"],
            row_in["note"],
        )
        assert row_out["status"] in ("matched", "ambiguous", "not_found", "invalid")
    # The geocoded rows are right: the registrations land in their true grid.
    truth = spreadsheet["truth"]
    good = [r for r in written if r["uscc"] in truth]
    right_grid = sum(r["grid_code"] == truth[r["uscc"]]["grid_code"] for r in good) / len(good)
    assert right_grid >= 0.99
    matched = [r for r in good if r["status"] == "matched" and r["level"] in ("room", "building", "door")]
    assert matched
    for r in matched[:200]:
        assert float(r["confidence"]) > 0 and r["address_id"] and r["standard_address"]
        assert 113.4 < float(r["lon"]) < 114.4 and 22.5 < float(r["lat"]) < 23.3
        assert r["near_boundary"] in ("True", "False")


def test_bad_rows_are_kept_with_their_reason(db: DatabaseSettings, spreadsheet: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "geocoded.csv"
    assert gridgov(db, "geocode", str(spreadsheet["path"]), "--out", str(out), "--workers", "1").exit_code == 0
    bad = {r["uscc"]: r for r in read_csv(out) if r["uscc"].startswith("bad-")}
    assert set(bad) == {f"bad-{kind}" for kind in BAD_ROWS}
    for kind in BAD_ROWS:
        row = bad[f"bad-{kind}"]
        assert row["status"] in ("invalid", "not_found"), row
        assert row["reason"], row
        assert row["address_id"] == "" and row["grid_code"] == "" and row["lon"] == ""
    for kind in ("control", "too-long", "nul"):
        assert bad[f"bad-{kind}"]["status"] == "invalid", bad[f"bad-{kind}"]


def test_a_missing_column_is_refused_with_a_message(
    db: DatabaseSettings, spreadsheet: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "geocoded.csv"
    result = gridgov(db, "geocode", str(spreadsheet["path"]), "--out", str(out), "--column", "地址")
    assert result.exit_code != 0
    assert "地址" in result.output and "column" in result.output


def test_a_missing_input_file_is_refused(db: DatabaseSettings, tmp_path: Path) -> None:
    result = gridgov(db, "geocode", str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code != 0
    assert "nowhere.csv" in result.output


def test_a_file_that_is_not_utf8_is_refused(db: DatabaseSettings, tmp_path: Path) -> None:
    source = tmp_path / "gbk.csv"
    source.write_bytes("uscc,address\n1,东莞市长安镇振隆路1号\n".encode("gb18030"))
    result = gridgov(db, "geocode", str(source), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code != 0
    assert "UTF-8" in result.output


def test_an_empty_file_is_refused(db: DatabaseSettings, tmp_path: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("", encoding="utf-8")
    result = gridgov(db, "geocode", str(source), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code != 0


def test_the_registrations_meet_the_accuracy_budgets(
    geocoder: Geocoder, registrations: list[dict[str, Any]], record_property: Any
) -> None:
    answers = geocoder.answers([geocoder.matcher.match(r["raw_address"]) for r in registrations])
    n = len(registrations)
    right_grid = sum(a.grid_code == r["grid_code"] for a, r in zip(answers, registrations, strict=True)) / n
    confident = [(a, r) for a, r in zip(answers, registrations, strict=True) if a.confidence >= 0.9]
    precision = sum(a.address_id == r["address_id"] for a, r in confident) / len(confident)
    confident_share = len(confident) / n
    door_exact = sum(a.address_id == r["address_id"] for a, r in zip(answers, registrations, strict=True)) / n
    not_found = sum(a.status == "not_found" for a in answers) / n
    figures = {
        "entities": n,
        "correct_grid": round(right_grid, 4),
        "precision_at_0.9": round(precision, 4),
        "share_at_0.9": round(confident_share, 4),
        "exact_address": round(door_exact, 4),
        "not_found": round(not_found, 4),
    }
    for name, value in figures.items():
        record_property(name, value)
    print(figures)
    assert right_grid >= 0.99, figures
    assert precision >= 0.995, figures
    assert confident_share >= 0.80, figures


def test_an_index_directory_that_cannot_be_written_warns_and_geocodes_from_memory(
    db: DatabaseSettings, spreadsheet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_out = tmp_path / "saved.csv"
    assert gridgov(db, "geocode", str(spreadsheet["path"]), "--out", str(saved_out)).exit_code == 0
    # A path below a regular file: no store can be written there, whoever runs the tests (root ignores modes).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("GRIDGOV_INDEX_DIR", str(blocker / "index"))
    out = tmp_path / "geocoded.csv"
    result = gridgov(db, "geocode", str(spreadsheet["path"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if "could not be saved" in line]
    assert len(warnings) == 1 and str(blocker / "index") in warnings[0], result.stderr
    # The same answers as with the store.
    assert out.read_bytes() == saved_out.read_bytes()
