"""api.auth.errors: what can go wrong creating accounts and keys (the CLI and the service raise these)."""

from __future__ import annotations


class AuthError(Exception):
    """Base class of the account and key errors."""


class InvalidToken(AuthError):
    """An access token that is malformed, badly signed or expired."""


class InvalidRole(AuthError):
    """A role name that is not one of ROLES."""


class InvalidScope(AuthError):
    """A scope missing, present where none is allowed, malformed, or naming nothing that exists."""


class DuplicateUser(AuthError):
    """A user name that is already taken."""


class DuplicateKeyName(AuthError):
    """A hotline key's name that an active key already holds (a hotline's requests are owned by its key's name)."""


class NotAllowed(AuthError):
    """The caller's role lacks the capability a route needs (supervision.permissions)."""


class WeakPassword(AuthError):
    """A password the policy refuses (api.auth.passwords): too short, the user name, or a common password."""


class InvalidPermission(AuthError):
    """An API key permission or event kind that is unknown, or that the key's role cannot use."""


class UnknownUser(AuthError):
    """No account of this name."""
