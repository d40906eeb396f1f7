"""api.auth.logfilter: keep API keys given as `key=` out of the access log."""

from __future__ import annotations

import logging
import re

# `key=` (Nominatim-style clients) and `password=`/`access_token=` if someone puts them in a URL by mistake.
_SECRET_QUERY = re.compile(r"(?i)([?&](?:key|api_key|password|access_token|token)=)[^&\s\"]*")


def redact_url(text: str) -> str:
    """The text with the values of secret-looking query parameters replaced by ***."""
    return _SECRET_QUERY.sub(r"\1***", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrites log records so that query-string secrets never reach a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message and its string arguments; never drops a record."""
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_redaction(logger_names: tuple[str, ...] = ("uvicorn.access", "uvicorn.error")) -> None:
    """Attach the redacting filter to the server's loggers (once each)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter())
