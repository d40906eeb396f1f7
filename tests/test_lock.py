"""A developer who changes a dependency in pyproject.toml without re-locking is stopped by `make setup`, which says why."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / "tools" / "check_lock.py"
LOCK = ROOT / "requirements.lock"


def check(pyproject: Path, lock: Path = LOCK) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), "--pyproject", str(pyproject), "--lock", str(lock)],
        capture_output=True,
        text=True,
        check=False,
    )


def copy_with(tmp_path: Path, old: str, new: str) -> Path:
    """pyproject.toml as someone edited it: `old` replaced by `new`, once."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    edited = tmp_path / "pyproject.toml"
    edited.write_text(text.replace(old, new), encoding="utf-8")
    return edited


def test_the_committed_lock_matches_pyproject() -> None:
    result = check(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_pin_changed_without_relocking_is_refused_with_the_pin_and_the_fix(tmp_path: Path) -> None:
    result = check(copy_with(tmp_path, '"numpy==2.4.6"', '"numpy==2.4.7"'))
    assert result.returncode == 1
    assert "requirements.lock is out of date with pyproject.toml" in result.stderr
    assert "pyproject.toml pins numpy==2.4.7, requirements.lock has numpy==2.4.6" in result.stderr
    assert "run `make lock`" in result.stderr.lower()


def test_a_dependency_added_without_relocking_is_refused_by_name(tmp_path: Path) -> None:
    result = check(copy_with(tmp_path, '"rich==15.0.0",', '"rich==15.0.0",\n    "tabulate==0.9.0",'))
    assert result.returncode == 1
    assert "pyproject.toml requires tabulate==0.9.0, requirements.lock has no tabulate" in result.stderr


def test_a_loosened_requirement_is_caught_by_the_digest_even_though_every_pin_is_still_locked(tmp_path: Path) -> None:
    result = check(copy_with(tmp_path, '"setuptools>=69"', '"setuptools>=70"'))
    assert result.returncode == 1
    assert "the dependency lists of pyproject.toml changed since the lock was written" in result.stderr


def test_reordering_the_dependencies_needs_no_new_lock(tmp_path: Path) -> None:
    edited = copy_with(tmp_path, '    "alembic==1.20.1",\n', "")
    edited.write_text(
        edited.read_text(encoding="utf-8").replace(
            '"python-multipart==0.0.34",', '"python-multipart==0.0.34",\n    "alembic==1.20.1",'
        ),
        encoding="utf-8",
    )
    assert check(edited).returncode == 0


def test_a_lock_not_written_by_make_lock_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "".join(line for line in LOCK.read_text(encoding="utf-8").splitlines(True) if "pyproject-digest" not in line)
    )
    result = check(ROOT / "pyproject.toml", lock)
    assert result.returncode == 1
    assert "records no digest" in result.stderr


def test_make_setup_stops_on_a_stale_lock_before_creating_the_venv(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(CHECKER, tmp_path / "tools")
    shutil.copy(LOCK, tmp_path)
    copy_with(tmp_path, '"shapely==2.2.0"', '"shapely==2.2.1"')
    result = subprocess.run(
        ["make", "--no-print-directory", "venv", f"PYTHON={sys.executable}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "pyproject.toml pins shapely==2.2.1, requirements.lock has shapely==2.2.0" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_every_locked_package_is_pinned_with_hashes_and_the_build_needs_nothing_else() -> None:
    hashes: dict[str, int] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line):
            package = match[1].lower()
            hashes[package] = 0
        elif "--hash=sha256:" in line:
            hashes[package] += 1
    assert hashes and all(hashes.values()), [name for name, count in hashes.items() if not count]
    assert {"pip", "setuptools", "wheel"} <= hashes.keys()
