"""benchmarks.parse_real_report: developer-side check of the parser on real Dongguan strings (never a test).

    .venv/bin/python -m benchmarks.parse_real_report [DATA_DIR]     (default ../shared/data/real)

Prints how many real strings parse into a known town, the component agreement with the annotated corpora
(BMES for corpus A, BIO for corpus B) and the normalize+parse speed. Nothing here is copied into the project;
the data directory is read at run time only.
"""

from __future__ import annotations

import contextlib
import csv
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from address_library.errors import AddressInputError
from address_library.gazetteer import community_stem
from address_library.normalize import normalize
from address_library.parse import ParsedAddress, parse

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
_DIGITS = re.compile(r"\d+")


def read_annotated(path: Path) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """Sentences of a `char TAG` file (BMES or BIO) as (text, {label: [span, …]})."""
    tokens: list[tuple[str, str]] = []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        parts = line.split()
        if len(parts) >= 2:
            tokens.append((parts[0], parts[-1]))
            continue
        if not tokens:
            continue
        text = ""
        spans: dict[str, list[str]] = {}
        label: str | None = None
        current = ""
        for token, tag in tokens:
            piece = token[2:] if token.startswith("##") else token
            text += piece
            prefix, _, name = tag.partition("-")
            name = name.lower()
            if prefix in ("B", "S") or (prefix in ("I", "M", "E") and name != label) or prefix == "O":
                if label and current:
                    spans.setdefault(label, []).append(current)
                label, current = (name, piece) if prefix != "O" else (None, "")
            else:
                current += piece
            if prefix in ("E", "S"):
                if label and current:
                    spans.setdefault(label, []).append(current)
                label, current = None, ""
        if label and current:
            spans.setdefault(label, []).append(current)
        yield text, spans
        tokens = []


def _norm(text: str) -> str:
    try:
        return normalize(text)
    except AddressInputError:
        return ""


def _number(text: str | None) -> str | None:
    if not text:
        return None
    found = _DIGITS.search(_norm(text))
    return found.group(0) if found else None


def agrees(label: str, span: str, parsed: ParsedAddress) -> bool:
    """Whether our parse carries the annotated span of this label."""
    value = _norm(span)
    if label == "town":
        return parse(span).town_code == parsed.town_code if value else False
    if label in ("community", "village"):
        names = {parsed.natural_village, parsed.community}
        if parsed.community:
            names.add(community_stem(parsed.community))
        return any(n and (value == n or value in n or n in value) for n in names)
    if label == "road":
        return value in {parsed.road, parsed.intersection, parsed.lane}
    if label == "roadno":
        return _number(span) == parsed.door_no
    if label == "poi":
        return any(n and (value == n or value in n) for n in (parsed.compound, parsed.park, parsed.remainder))
    if label in ("houseno", "cellno"):
        return _number(span) in {_number(parsed.building), _number(parsed.unit)}
    if label == "floorno":
        return _number(span) == _number(parsed.floor)
    if label == "roomno":
        return _number(span) in {_number(parsed.room), _number(parsed.stall)}
    return False


LABELS = ("town", "community", "village", "road", "roadno", "poi", "houseno", "floorno", "roomno")


def report(data_dir: Path) -> None:
    """Print the figures."""
    with (data_dir / "dongguan_real_addresses.csv").open(encoding="utf-8") as handle:
        rows = [row["address"] for row in csv.DictReader(handle)]
    parsed = []
    refused = 0
    for text in rows:
        try:
            parsed.append(parse(text))
        except AddressInputError:
            refused += 1
    known = sum(p.town_code is not None for p in parsed)
    outside = sum(p.outside_dongguan for p in parsed)
    levels = Counter(p.level or "none" for p in parsed)
    print(f"real strings: {len(rows)}, refused as bad input: {refused}")
    print(f"parsed into a known town: {known} ({known / len(rows):.1%}); outside Dongguan: {outside}")
    print("levels: " + ", ".join(f"{k} {v}" for k, v in levels.most_common()))

    for name in ("address_matching_v2_dongguan.txt", "ncap_dongguan.txt"):
        path = data_dir / "annotated" / name
        if not path.exists():
            continue
        total: Counter[str] = Counter()
        hit: Counter[str] = Counter()
        sentences = 0
        for text, spans in read_annotated(path):
            if "[UNK]" in text:
                continue
            try:
                result = parse(text)
            except AddressInputError:
                continue
            sentences += 1
            for label in LABELS:
                for span in spans.get(label, []):
                    total[label] += 1
                    hit[label] += agrees(label, span, result)
        print(f"\n{name}: {sentences} addresses")
        for label in LABELS:
            if total[label]:
                print(f"  {label:10s} {hit[label]:4d}/{total[label]:<4d} {hit[label] / total[label]:.1%}")

    sample = (rows * (1 + 30_000 // max(len(rows), 1)))[:30_000]
    start = time.perf_counter()
    for text in sample:
        with contextlib.suppress(AddressInputError):
            parse(text)
    elapsed = time.perf_counter() - start
    print(f"\nnormalize+parse: {len(sample) / elapsed:,.0f} addresses/s on one core (real strings)")


if __name__ == "__main__":
    report(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR)
