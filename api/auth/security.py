"""api.auth.security: password hashing (argon2), access tokens (JWT HS256), API keys and their HMAC digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api.auth.errors import InvalidToken

API_KEY_PREFIX = "gg_"
API_KEY_RANDOM_CHARS = 32
KEY_PREFIX_CHARS = 8
JWT_ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash of the password (salted, self-describing)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; None (unknown user) still spends one verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def generate_api_key() -> str:
    """A new API key: `gg_` and 32 URL-safe random characters."""
    return API_KEY_PREFIX + secrets.token_urlsafe(24)[:API_KEY_RANDOM_CHARS]


def generate_session_token() -> str:
    """A random browser-session token for the cookie."""
    return secrets.token_urlsafe(32)


def keyed_digest(secret_key: str, value: str) -> str:
    """HMAC-SHA-256(secret_key, value) in hex: how API keys and session tokens are stored."""
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def key_prefix(key: str) -> str:
    """The first 8 characters of a key, safe to show in lists."""
    return key[:KEY_PREFIX_CHARS]


@dataclass(frozen=True)
class TokenClaims:
    """What an access token says about its bearer."""

    subject: str
    role: str
    scope: str | None
    town_code: str | None
    expires_at: datetime
    # The user's token version when the token was issued (0 for tokens from before versions existed).
    version: int = 0


def issue_access_token(
    secret_key: str,
    *,
    subject: str,
    role: str,
    scope: str | None,
    town_code: str | None,
    minutes: float,
    version: int = 0,
    now: datetime | None = None,
) -> str:
    """A signed JWT (HS256) with sub, role, scope, town, ver (the user's token version) and exp, for `minutes`."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": role,
        "scope": scope,
        "town": town_code,
        "ver": version,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=minutes)).timestamp()),
    }
    return jwt.encode(claims, secret_key, algorithm=JWT_ALGORITHM)


def decode_access_token(secret_key: str, token: str) -> TokenClaims:
    """The claims of a valid token, or InvalidToken."""
    try:
        claims = jwt.decode(token, secret_key, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "role", "exp"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from exc
    scope, town, version = claims.get("scope"), claims.get("town"), claims.get("ver", 0)
    if not isinstance(claims["sub"], str) or not isinstance(claims["role"], str) or type(version) is not int:
        raise InvalidToken("malformed claims")
    return TokenClaims(
        subject=claims["sub"],
        role=claims["role"],
        scope=scope if isinstance(scope, str) else None,
        town_code=town if isinstance(town, str) else None,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        version=version,
    )
