"""Is requirements.lock still the lock of pyproject.toml?

`make setup` runs this with the system python3, before the virtual environment exists, so it uses the standard
library only (tomllib: Python 3.11). Two checks, either of which refuses the lock:

1. The lock's header records a digest of pyproject.toml's dependency lists (`[project] dependencies`, every
   `[project.optional-dependencies]` list, `requires-python` and `[build-system] requires`), written by
   `make lock`. Any change to those lists since then changes the digest.
2. Every direct requirement of pyproject.toml is in the lock, and each exact pin `name==version` with that version
   (requirements limited to other platforms by an environment marker are left to the digest).

    python3 tools/check_lock.py            check; exit 0 when the lock matches, 1 with the reasons when it does not
    python3 tools/check_lock.py --inputs   print what `make lock` locks besides pyproject.toml: the build
                                           requirements (installed into the venv for `--no-build-isolation`)
                                           and pip itself
    python3 tools/check_lock.py --stamp    write the digest into the lock's header (the last step of `make lock`)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGEST_PREFIX = "# pyproject-digest: sha256:"
# Locked besides pyproject's own lists: the installer that `make setup` upgrades the venv's bundled pip to.
INSTALLER = ["pip"]

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)
_PIN = re.compile(r"^==\s*(?P<version>[^\s,*]+)$")
_LOCKED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def canonical(name: str) -> str:
    """The PEP 503 form of a distribution name: `PyJWT` and `pyjwt`, `ruamel.yaml` and `ruamel-yaml` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _lists(pyproject: dict) -> dict[str, object]:
    project = pyproject.get("project", {})
    extras = project.get("optional-dependencies", {})
    return {
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {extra: sorted(reqs) for extra, reqs in sorted(extras.items())},
        "requires-python": project.get("requires-python", ""),
        "build-system.requires": sorted(pyproject.get("build-system", {}).get("requires", [])),
    }


def digest(pyproject: dict) -> str:
    """The digest of the dependency lists: their order in pyproject.toml does not matter, their content does."""
    text = json.dumps(_lists(pyproject), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def direct_requirements(pyproject: dict) -> list[str]:
    """Every requirement pyproject.toml names: dependencies, every extra, the build requirements."""
    project = pyproject.get("project", {})
    extras = project.get("optional-dependencies", {}).values()
    build = pyproject.get("build-system", {}).get("requires", [])
    return [*project.get("dependencies", []), *(req for extra in extras for req in extra), *build]


def read_lock(text: str) -> tuple[str | None, dict[str, str]]:
    """The digest recorded in the header (None if there is none) and the pins `canonical name -> version`."""
    recorded = None
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(DIGEST_PREFIX):
            recorded = line[len(DIGEST_PREFIX) :].split()[0]
        match = _LOCKED.match(line)
        if match:
            pins[canonical(match["name"])] = match["version"]
    return recorded, pins


def problems(pyproject_path: Path, lock_path: Path) -> list[str]:
    """Why the lock does not match pyproject.toml; empty when it does."""
    if not lock_path.is_file():
        return [f"{lock_path.name} does not exist"]
    pyproject = tomllib.loads(pyproject_path.read_text(encoding="utf-8"))
    recorded, pins = read_lock(lock_path.read_text(encoding="utf-8"))
    found = []
    for requirement in direct_requirements(pyproject):
        match = _REQUIREMENT.match(requirement)
        if not match or match["marker"]:
            continue
        name = canonical(match["name"])
        pin = _PIN.match(match["spec"])
        if name not in pins:
            found.append(f"pyproject.toml requires {requirement.strip()}, {lock_path.name} has no {match['name']}")
        elif pin and pin["version"].lower() != pins[name].lower():
            found.append(
                f"pyproject.toml pins {match['name']}=={pin['version']}, {lock_path.name} has {name}=={pins[name]}"
            )
    current = digest(pyproject)
    if recorded is None:
        found.append(
            f"{lock_path.name} records no digest of pyproject.toml's dependency lists (not written by `make lock`)"
        )
    elif recorded != current:
        found.append(
            "the dependency lists of pyproject.toml changed since the lock was written "
            f"(digest {current[:12]}…, the lock records {recorded[:12]}…)"
        )
    return found


def stamp(pyproject_path: Path, lock_path: Path) -> None:
    """Record the digest in the lock's header, below the comment lines that uv writes first."""
    pyproject = tomllib.loads(pyproject_path.read_text(encoding="utf-8"))
    lines = [
        line
        for line in lock_path.read_text(encoding="utf-8").splitlines()
        if not line.startswith(DIGEST_PREFIX) and not line.startswith("# pip, setuptools and wheel:")
    ]
    header = 0
    while header < len(lines) and lines[header].startswith("#"):
        header += 1
    lines[header:header] = [
        f"{DIGEST_PREFIX}{digest(pyproject)}  (pyproject.toml's dependency lists; checked by tools/check_lock.py)",
        "# pip, setuptools and wheel: the pinned installer and [build-system] requires (for --no-build-isolation)",
    ]
    lock_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--inputs", action="store_true", help="print the requirements locked besides pyproject.toml")
    mode.add_argument("--stamp", action="store_true", help="write the digest of pyproject.toml into the lock")
    args = parser.parse_args(argv)

    if args.inputs:
        pyproject = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))
        print("\n".join([*pyproject.get("build-system", {}).get("requires", []), *INSTALLER]))
        return 0
    if args.stamp:
        stamp(args.pyproject, args.lock)
        return 0
    found = problems(args.pyproject, args.lock)
    if found:
        print(f"{args.lock.name} is out of date with pyproject.toml:", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        print(
            f"Run `make lock` to refresh {args.lock.name} (and commit it); `make setup` installs nothing until then.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
