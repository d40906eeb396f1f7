"""api.cli.__main__: `python -m api.cli`, the same command line as the `gridgov` console script."""

from __future__ import annotations

import sys

from api.cli import app


def main() -> None:  # pragma: no cover - console entry
    """Entry point for `python -m api.cli`."""
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
