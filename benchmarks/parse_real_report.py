"""benchmarks.parse_real_report: developer-side check of the parser on real Dongguan strings (never a test).

    .venv/bin/python -m benchmarks.parse_real_report [--markdown] [DATA_DIR]     (default ../shared/data/real)

Prints how many real strings parse into a known town, the component agreement with the annotated corpora
(BMES for corpus A, BIO for corpus B) and the normalize+parse speed; --markdown prints the error table by
component and the label conventions instead, as pasted into benchmarks/RESULTS.md. Nothing here is copied into
the project; the data directory is read at run time only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from address_library.errors import AddressInputError
from address_library.gazetteer import default_gazetteer
from address_library.lexicon import FOLD
from address_library.normalize import normalize
from address_library.parse import ParsedAddress, parse

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CORPORA = ("address_matching_v2_dongguan.txt", "ncap_dongguan.txt")
LABELS = ("town", "community", "village", "road", "roadno", "poi", "houseno", "floorno", "roomno")
_DIGITS = re.compile(r"\d+")
_IDENT = re.compile(r"[A-Z]{0,2}\d+(?:-\d+)?[A-Z]?|[A-Z]{1,2}")

# How the annotation's labels map onto our standard-address model. Each line is a decision, not a tolerance:
# the span must still be read, with the same characters, into the component named.
CONVENTIONS = (
    ("all labels",
     "A span is normalized as it stands inside its address, not alone: a name's leading 广东 or 东莞 "
     "(东莞XX中学) stays, as it does in the full text we parse."),
    ("town",
     "Our town. The annotators sometimes put a community written straight after an old district form in the "
     "town slot (南城区XX): that span agrees when it names our community, which carries the town."),
    ("community, village",
     "The annotators use both labels for 社区/村 names alike. Ours: an official 社区/村 of the gazetteer is "
     "`community` (matched by code, so 新安, 新安村, 新安社区居委会 are one community); any other village name is "
     "`natural_village`, which holds the villages written one after another before the lane or door as one chain "
     "(上围村新屋组, 上围村3组) where the annotators label each link. A span agrees when it names our community, lies "
     "within our natural-village chain, or joins our community's written form and our natural village "
     "(新安上围村)."),
    ("road",
     "The annotation has no lane label: every 街/路/巷 is `road`. Ours keeps `road`, `lane` and `intersection` "
     "apart, and in a village a numbered lane (石岭头一巷) is `natural_village` + `lane`. A span agrees with our "
     "road (with its `road_segment`, 莞长路长安段), lane or intersection; with natural village + lane when it is "
     "exactly their concatenation; with our lane when it is the span with the direction the annotators labelled "
     "apart in front (`direction` 南 + road 1巷: our lanes keep their direction, 南1巷); with either part of a lane we hold as street + numbered lane (兴华街|三巷); and "
     "when it is our community as written followed by our road (新安|兴华街: the matcher's known-road step re-reads "
     "the longer name from the library). A road we wrote with a village or landmark in front (石岭头人民路) does not "
     "agree: the matcher would not find it."),
    ("roadno",
     "Our `door_no` (first number: 12-13号 is door 12, sub-number 13)."),
    ("poi",
     "The annotation's poi is any named place. Ours splits it: `compound`, `park`, `natural_village`, a numbered "
     "sub-area `phase` (一区, 3期), the `community` when the name is a community's (新安, 上沙), and `pois` for "
     "shops, factories, companies and landmarks, in the body or in a bracketed note. A span agrees with one of these "
     "exactly; when it lies within our natural-village chain; when it is our town or community as written followed "
     "by one of them or by our natural village (长安|锦华广场, 新安|上围: we read the leading place name as the "
     "town or community); or when our compound or "
     "park is the span joined with one other poi/subpoi span of the same address (锦华城|翡翠苑 is one "
     "compound name to us, with its 栋 numbered inside it). Unplaced remainder text does not count."),
    ("houseno, cellno",
     "Our `building`/`unit` number. The annotation also calls a door number houseno when it follows a named place "
     "instead of a road (上围村…17号): a span written as N号 (not N号楼) agrees with our `door_no`."),
    ("floorno, roomno",
     "Our `floor`; our `room` or `stall` (a shop unit). Compared by number with its letters (9C, B1203). A room "
     "number of three or four digits carries its floor (1102 is on floor 11) and our standard address then holds no "
     "separate floor: a floor span agrees with the floor our room number carries (302房（三楼）)."),
)  # fmt: skip


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
    """A span normalized as it stands inside its address: a name's leading 广东 or 东莞 (东莞XX中学) is kept, as it
    is in the full text, where only the address's own leading province and city are taken off."""
    try:
        inside = normalize(_LEAD + text)
    except AddressInputError:
        return ""
    return inside[1:] if inside.startswith(_LEAD) else inside


_LEAD = "甲"  # any character no normalization rule reads, standing for the text before the span


def _digits(text: str | None) -> str | None:
    """The first number of a span (roadno: 12-13号 → 12)."""
    if not text:
        return None
    found = _DIGITS.search(_norm(text))
    return found.group(0) if found else None


def _ident(text: str | None) -> str | None:
    """The number of a span with its letters (c12栋 → C12, 305-1室 → 305-1, 二楼 → 2)."""
    if not text:
        return None
    found = _IDENT.search(_norm(text))
    return found.group(0) if found else None


def _is_community(value: str, parsed: ParsedAddress) -> bool:
    """Whether the whole of value is a written form of our community."""
    if not parsed.community_code:
        return False
    gaz = default_gazetteer()
    place = gaz.match_community(value, value.translate(FOLD), 0, parsed.town_code)
    return place is not None and place[1] == len(value) and place[0].code == parsed.community_code


def _is_place_prefix(prefix: str, parsed: ParsedAddress) -> bool:
    """Whether prefix is our town or our community as written."""
    if not prefix:
        return False
    if _is_community(prefix, parsed):
        return True
    found = parse(prefix)
    return found.town_code == parsed.town_code and found.remainder is None and found.level == "town"


def _tiles(name: str, value: str, others: list[str]) -> bool:
    """Whether name is value joined with one other annotated span, in either order (锦华城 + 翡翠苑)."""
    if name.startswith(value):
        return name[len(value) :] in others
    return name.endswith(value) and name[: -len(value)] in others


def _lane_part(value: str, lane: str | None) -> bool:
    """One part of a lane held as street + numbered lane (兴华街3巷 → 兴华街, 3巷)."""
    if not lane or value == lane:
        return False
    if lane.startswith(value):
        return value.endswith(("街", "路")) and _DIGITS.match(lane, len(value)) is not None
    return lane.endswith(value) and lane[: -len(value)].endswith(("街", "路")) and value[0].isdigit()


def _directed_lane(value: str, lane: str | None, spans: dict[str, list[str]] | None) -> bool:
    """Our lane is the span with the direction the annotators labelled apart in front of it (南|1巷)."""
    if not lane or not lane.endswith(value) or len(lane) == len(value):
        return False
    return lane[: -len(value)] in {_norm(s) for s in (spans or {}).get("direction", [])}


def agrees(  # noqa: C901 - one rule per label, in CONVENTIONS order
    label: str, span: str, parsed: ParsedAddress, spans: dict[str, list[str]] | None = None
) -> bool:
    """Whether our parse carries the annotated span of this label (see CONVENTIONS); spans: the sentence's others."""
    value = _norm(span)
    if not value:
        return False
    if label == "town":
        return parse(span).town_code == parsed.town_code or _is_community(value, parsed)
    if label in ("community", "village"):
        if _is_community(value, parsed) or (parsed.natural_village and value in parsed.natural_village):
            return True
        village = parsed.natural_village
        return bool(village and value.endswith(village) and _is_community(value[: -len(village)], parsed))
    if label == "road":
        road = parsed.road + (parsed.road_segment or "") if parsed.road else None
        if value in {road, parsed.lane, parsed.intersection}:
            return True
        if parsed.natural_village and parsed.lane and value == parsed.natural_village + parsed.lane:
            return True
        if road and value.endswith(road) and _is_community(value[: -len(road)], parsed):
            return True
        return _lane_part(value, parsed.lane) or _directed_lane(value, parsed.lane, spans)
    if label == "roadno":
        return _digits(span) == parsed.door_no
    if label == "poi":
        names = {parsed.compound, parsed.park, parsed.phase, *parsed.pois} - {None}
        if value in names or _is_community(value, parsed):
            return True
        if parsed.natural_village and value in parsed.natural_village:
            return True
        placed = names | {parsed.natural_village} - {None}
        if any(value.endswith(n) and _is_place_prefix(value[: -len(n)], parsed) for n in placed if n):
            return True
        others = [_norm(s) for key in ("poi", "subpoi") for s in (spans or {}).get(key, []) if s != span]
        return any(n and _tiles(n, value, others) for n in (parsed.compound, parsed.park))
    if label in ("houseno", "cellno"):
        if _ident(span) in {_ident(parsed.building), _ident(parsed.unit)} - {None}:
            return True
        return value.endswith("号") and _digits(span) == parsed.door_no
    if label == "floorno":
        floor = _ident(parsed.floor)
        room = _DIGITS.fullmatch(_ident(parsed.room) or "")
        if floor is None and room is not None and len(room.group(0)) in (3, 4):
            floor = room.group(0)[:-2]
        return floor is not None and _ident(span) == floor
    if label == "roomno":
        return _ident(span) in {_ident(parsed.room), _ident(parsed.stall)} - {None}
    return False


def _has_value(label: str, parsed: ParsedAddress) -> bool:
    """Whether we put anything into the components a label maps to (a disagreement is then wrong, not missed)."""
    fields = {
        "town": (parsed.town_code,),
        "community": (parsed.community_code, parsed.natural_village),
        "village": (parsed.community_code, parsed.natural_village),
        "road": (parsed.road, parsed.lane, parsed.intersection),
        "roadno": (parsed.door_no,),
        "poi": (parsed.compound, parsed.park, parsed.phase, parsed.poi),
        "houseno": (parsed.building, parsed.unit, parsed.door_no),
        "cellno": (parsed.building, parsed.unit),
        "floorno": (parsed.floor,),
        "roomno": (parsed.room, parsed.stall),
    }[label]
    return any(fields)


def score(path: Path) -> tuple[int, dict[str, Counter[str]]]:
    """(addresses read, per label: spans, agree, missed, wrong) over one annotated file."""
    counts: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
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
                tally = counts[label]
                tally["spans"] += 1
                if agrees(label, span, result, spans):
                    tally["agree"] += 1
                elif _has_value(label, result):
                    tally["wrong"] += 1
                else:
                    tally["missed"] += 1
    return sentences, counts


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

    for name in CORPORA:
        path = data_dir / "annotated" / name
        if not path.exists():
            continue
        sentences, counts = score(path)
        print(f"\n{name}: {sentences} addresses")
        for label in LABELS:
            tally = counts[label]
            if tally["spans"]:
                print(f"  {label:10s} {tally['agree']:4d}/{tally['spans']:<4d} {tally['agree'] / tally['spans']:.1%}")

    sample = (rows * (1 + 30_000 // max(len(rows), 1)))[:30_000]
    start = time.perf_counter()
    for text in sample:
        with contextlib.suppress(AddressInputError):
            parse(text)
    elapsed = time.perf_counter() - start
    print(f"\nnormalize+parse: {len(sample) / elapsed:,.0f} addresses/s on one core (real strings)")


def markdown(data_dir: Path) -> None:
    """Print the error table by component for each annotated corpus, then the conventions."""
    for name in CORPORA:
        path = data_dir / "annotated" / name
        if not path.exists():
            continue
        sentences, counts = score(path)
        print(f"`{name}`: {sentences} addresses\n")
        print("| component | annotated spans | agree | missed | wrong | agreement % |")
        print("|---|---:|---:|---:|---:|---:|")
        for label in LABELS:
            t = counts[label]
            if t["spans"]:
                share = 100 * t["agree"] / t["spans"]
                print(f"| {label} | {t['spans']} | {t['agree']} | {t['missed']} | {t['wrong']} | {share:.1f} |")
        print()
    print("missed: we put nothing in the component(s) the label maps to; wrong: we put something else there.\n")
    print("Conventions (annotation label → our components):\n")
    for labels, text in CONVENTIONS:
        print(f"- **{labels}**: {text}")


def main() -> None:
    """Command line: the plain report, or --markdown for RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--markdown", action="store_true", help="the error table by component and the conventions")
    args = parser.parse_args()
    if args.markdown:
        markdown(args.data_dir)
    else:
        report(args.data_dir)


if __name__ == "__main__":
    main()
