"""address_library.batch: geocode a CSV file of any size, streaming, every input row kept and in order.

Rows are read and written in chunks; chunks are matched in worker processes that share the index built once
in the parent (fork, copy-on-write), so two cores give nearly twice the rate of one. A row that cannot be
geocoded keeps its place in the output with `status=not_found` (or `invalid`) and the reason; a row holding a NUL
byte (in any column) is kept as it is, `invalid` for its control character. The header row is different: a header
holding a control character refuses the file (`header_problem` lets the API refuse it before a job starts). A field
longer than `csv.field_size_limit()` (131,072 characters, Python's default, left as it is) refuses the file with
its line number.
The result file is created mode 0600, under a temporary name renamed into place when complete (`write_table`: the
cluster path of address_library.cluster_geocode reads and writes through the same functions). Error messages name the file by its role ("the input file"), never its path:
they reach API clients.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from address_library.batch_jobs import open_private
from address_library.errors import BatchInputError
from address_library.service import ANSWER_FIELDS, Geocoder
from gis.distributed import atomic_output

CHUNK_ROWS = 5_000
# A column name is one line: no C0 control character, no DEL.
_HEADER_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")

_WORKER_GEOCODER: Geocoder | None = None


@dataclass(frozen=True)
class BatchReport:
    """What a batch run did."""

    rows: int
    by_status: dict[str, int]
    seconds: float


def _match_chunk(texts: list[str]) -> list[tuple[object, ...]]:
    geocoder = _WORKER_GEOCODER
    assert geocoder is not None, "worker started without a geocoder"
    return match_texts(geocoder, texts)


def match_texts(geocoder: Geocoder, texts: list[str]) -> list[tuple[object, ...]]:
    """Answers for a list of texts as output tuples (ANSWER_FIELDS order); bad input gives status 'invalid'."""
    return [tuple(getattr(a, f) for f in ANSWER_FIELDS) for a in geocoder.geocode_many(texts)]


def _chunks(
    reader: Iterator[list[str]], column: int, chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[list[list[str]], list[str]]]:
    rows: list[list[str]] = []
    texts: list[str] = []
    for row in reader:
        address = row[column] if column < len(row) else ""
        if "\x00" not in address and any("\x00" in cell for cell in row):
            # A NUL anywhere in the row makes it invalid: the text geocoded carries it to the control check.
            address += "\x00"
        rows.append(row)
        texts.append(address)
        if len(rows) >= chunk_rows:
            yield rows, texts
            rows, texts = [], []
    if rows:
        yield rows, texts


def _header_control(header: list[str]) -> str | None:
    """Why a header row is refused (a column name holds a control character), or None."""
    for number, name in enumerate(header, start=1):
        found = _HEADER_FORBIDDEN.search(name)
        if found:
            character = "NUL" if found.group() == "\x00" else f"U+{ord(found.group()):04X}"
            return (
                f"the input file's header holds a control character ({character}) in column {number}: "
                "column names are one line of text"
            )
    return None


def _too_long(exc: csv.Error, line: int) -> BatchInputError:
    """The error of a CSV the reader refused at `line` (a field over the size limit, or broken quoting)."""
    if "field larger than field limit" in str(exc):
        return BatchInputError(
            f"line {line} of the input file holds a field longer than {csv.field_size_limit():,} characters "
            "(the limit of one CSV field): shorten it or split the file"
        )
    return BatchInputError(f"line {line} of the input file is not valid CSV ({exc})")


def header_problem(input_path: Path) -> str | None:
    """Why the file's header row refuses the file (a control character), read at once; None when it is fine or
    when only the job can tell (not UTF-8, empty, too long: the job fails with the reason)."""
    try:
        with input_path.open(newline="", encoding="utf-8-sig") as source:
            header = next(csv.reader(source))
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error):
        return None
    return _header_control(header)


@dataclass
class InputTable:
    """An input CSV whose header passed its checks: the header, the address column's position, and its rows in
    chunks of (rows, texts to geocode); reading errors met while streaming raise BatchInputError."""

    header: list[str]
    column: int
    chunks: Iterator[tuple[list[list[str]], list[str]]]


@contextlib.contextmanager
def read_table(input_path: Path, column: str = "address", *, chunk_rows: int = CHUNK_ROWS) -> Iterator[InputTable]:
    """Open `input_path`, check its header (UTF-8, no control character, holds `column`), stream its rows."""
    try:
        source = input_path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise BatchInputError(f"cannot read the input file: {exc.strerror}") from exc
    with source:
        reader = csv.reader(source)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise BatchInputError(f"the input file is empty: it needs a header row with a '{column}' column") from exc
        except UnicodeDecodeError as exc:
            raise BatchInputError(f"the input file is not UTF-8 text (byte {exc.start})") from exc
        except csv.Error as exc:
            raise _too_long(exc, reader.line_num) from exc
        problem = _header_control(header)
        if problem is not None:
            raise BatchInputError(problem)
        if column not in header:
            raise BatchInputError(f"the input file has no column '{column}' (columns: {', '.join(header)})")
        col = header.index(column)
        yield InputTable(header, col, _guarded(reader, _chunks(reader, col, chunk_rows)))


def _guarded(
    reader: Any,  # csv.reader objects have no public type
    chunks: Iterator[tuple[list[list[str]], list[str]]],
) -> Iterator[tuple[list[list[str]], list[str]]]:
    """The chunks, with a decoding or CSV error met on the way told as the input file's fault."""
    try:
        yield from chunks
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"the input file is not UTF-8 text (byte {exc.start})") from exc
    except csv.Error as exc:
        raise _too_long(exc, reader.line_num) from exc


def write_table(
    output_path: Path,
    header: list[str],
    answered: Iterator[tuple[list[list[str]], list[tuple[object, ...]]]],
    progress: Callable[[int], None] | None = None,
) -> tuple[int, Counter[str]]:
    """Write the header and every (rows, answers) chunk to `output_path` (mode 0600): rows written and their
    statuses. The file is written under a temporary name and renamed when complete, so a failure never leaves a
    half-written file under the final name."""
    counts: Counter[str] = Counter()
    with atomic_output(output_path) as partial:
        try:
            sink = open_private(partial, "w")
        except OSError as exc:
            raise BatchInputError(f"cannot write the result file: {exc.strerror}") from exc
        with sink:
            writer = csv.writer(sink)
            writer.writerow([*header, *ANSWER_FIELDS])
            n_rows = _write(writer, answered, counts, progress)
    return n_rows, counts


def geocode_csv(
    geocoder: Geocoder,
    input_path: Path,
    output_path: Path,
    *,
    column: str = "address",
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Geocode `column` of every row of `input_path` into `output_path` (input columns + ANSWER_FIELDS)."""
    global _WORKER_GEOCODER
    started = time.perf_counter()
    workers = workers or min(2, os.cpu_count() or 1)
    with read_table(input_path, column) as table:
        _WORKER_GEOCODER = geocoder
        try:
            if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    n_rows, counts = write_table(output_path, table.header, _with_results(pool, table.chunks), progress)
            else:
                serial = ((rows, match_texts(geocoder, texts)) for rows, texts in table.chunks)
                n_rows, counts = write_table(output_path, table.header, serial, progress)
        finally:
            _WORKER_GEOCODER = None
    return BatchReport(rows=n_rows, by_status=dict(counts), seconds=time.perf_counter() - started)


def _with_results(
    pool: multiprocessing.pool.Pool, pairs: Iterator[tuple[list[list[str]], list[str]]]
) -> Iterator[tuple[list[list[str]], list[tuple[object, ...]]]]:
    """Results in input order, a few chunks in flight at once."""
    pending: list[tuple[list[list[str]], multiprocessing.pool.AsyncResult[list[tuple[object, ...]]]]] = []
    for rows, texts in pairs:
        pending.append((rows, pool.apply_async(_match_chunk, (texts,))))
        if len(pending) >= 4:
            done_rows, result = pending.pop(0)
            yield done_rows, result.get()
    for done_rows, result in pending:
        yield done_rows, result.get()


def _write(
    writer: Any,  # csv.writer objects have no public type
    chunks: Iterator[tuple[list[list[str]], list[tuple[object, ...]]]],
    counts: Counter[str],
    progress: Callable[[int], None] | None,
) -> int:
    n = 0
    for rows, answers in chunks:
        for row, answer in zip(rows, answers, strict=True):
            writer.writerow([*row, *("" if v is None else v for v in answer)])
            counts[str(answer[0])] += 1
        n += len(rows)
        if progress:
            progress(len(rows))
    return n
