"""address_library.errors: domain exceptions of the address_library package."""

from __future__ import annotations


class AddressLibraryError(Exception):
    """Base class of every error raised by the address_library package."""


class AddressInputError(AddressLibraryError):
    """An address text that cannot be processed: empty, over-long, or holding control or binary characters."""


class OutsideCity(AddressLibraryError):
    """A point outside the city's territory (reverse geocoding answers only inside Dongguan)."""
