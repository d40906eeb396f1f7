"""address_library.errors: domain exceptions of the address_library package, and the rejections a refused change carries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gis.rejections import ProblemLine, format_problems

# Rejections listed in a report before it summarises the rest.
REPORT_LIMIT = 200


class AddressLibraryError(Exception):
    """Base class of every error raised by the address_library package."""


class AddressInputError(AddressLibraryError):
    """An address text that cannot be processed: empty, over-long, or holding control or binary characters."""


class OutsideCity(AddressLibraryError):
    """A point outside the city's territory (reverse geocoding answers only inside Dongguan)."""


class BatchInputError(AddressLibraryError):
    """The input CSV cannot be read (missing file, no such column, undecodable) or the output not written."""


class MaintenanceError(AddressLibraryError):
    """Base class of the errors of library maintenance."""


class AddressNotFound(MaintenanceError):
    """No standard address has this id."""


class AddressStateError(MaintenanceError):
    """The address is not in a state that allows the change (retiring or moving a retired address)."""


class DuplicateAddress(MaintenanceError):
    """The standard text of a new address is already in the library: it names that address."""

    def __init__(self, address_id: int, standard_address: str, status: str) -> None:
        self.address_id = address_id
        self.standard_address = standard_address
        self.status = status
        state = "a retired" if status != "active" else "the"
        super().__init__(f"{standard_address} is already {state} standard address {address_id}")


class AddressFileError(MaintenanceError):
    """An import file cannot be read at all (missing, not UTF-8, broken, required columns missing, empty)."""


@dataclass(frozen=True)
class Rejection:
    """One problem with one new address: its 1-based row in the file (1 for a single add), its text, why."""

    row: int
    full_text: str | None
    reason_code: str
    detail: str


class AddressRejected(MaintenanceError):
    """New addresses (or a move) failed validation; nothing was changed."""

    def __init__(self, rejections: Sequence[Rejection], *, source: str | None = None) -> None:
        self.rejections = list(rejections)
        self.source = source
        if source is None:
            message = "; ".join(f"{r.reason_code}: {r.detail}" for r in self.rejections)
        else:
            n_rows = len({r.row for r in self.rejections})
            message = f"{source}: {n_rows} row(s) rejected, nothing loaded\n{format_rejections(self.rejections)}"
        super().__init__(message)


def format_rejections(rejections: Sequence[Rejection], *, limit: int = REPORT_LIMIT) -> str:
    """The rejections as lines: row, text, reason, detail; a count per reason at the end."""
    problems = [ProblemLine(r.row, r.full_text or "(no text)", r.reason_code, r.detail) for r in rejections]
    return format_problems(problems, unit="row", limit=limit)
