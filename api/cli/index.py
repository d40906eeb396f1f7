"""api.cli.index: `gridgov index`, the address index saved on disk — build it (whole city or some towns), show it."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import connection, fail

app = typer.Typer(
    help="Address index store (地址索引): the match index saved as memory-mapped files, opened in seconds.",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Root folder of the index stores (default: GRIDGOV_INDEX_DIR, .gridgov/index).",
        show_default=False,
    ),
]


def _root(directory: Path | None) -> Path:
    from address_library.index_store import IndexSettings

    root = directory if directory is not None else IndexSettings().index_dir
    if root.exists() and not root.is_dir():
        raise fail(f"{root} is not a folder", code=2)
    return root


def _size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 1e6


@app.command("build")
def index_build(
    towns: Annotated[
        list[str] | None,
        typer.Option(
            "--towns", help="Only these towns (codes like 441900004000; repeat the option). Default: the whole city."
        ),
    ] = None,
    directory: DirOption = None,
    workers: Annotated[int, typer.Option(help="Processes that normalize the texts.")] = 2,
) -> None:
    """Build the store of the library as it is now (an existing complete store of this version is reused)."""
    from address_library.index_store import IndexStoreError, build_store, read_manifest

    root = _root(directory)
    if workers < 1:
        raise fail("--workers must be at least 1", code=2)
    started = time.perf_counter()
    try:
        with connection() as conn:
            store = build_store(conn, root, towns=towns or None, workers=workers)
        manifest = read_manifest(store)
    except IndexStoreError as exc:
        raise fail(f"index not built: {exc}", code=2) from exc
    except OSError as exc:
        raise fail(f"index not built: cannot write under {root}: {exc.strerror}", code=2) from exc
    typer.echo(
        f"{store}\n{manifest['rows']:,} addresses, {time.perf_counter() - started:.1f} s, "
        f"{_size_mb(store):,.1f} MB on disk"
    )


@app.command("show")
def index_show(directory: DirOption = None) -> None:
    """The manifest of every store under the root: library version, scope, rows, towns, size."""
    from rich.console import Console
    from rich.table import Table

    from address_library.index_store import IndexStoreError, read_manifest

    root = _root(directory)
    stores = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("v")) if root.is_dir() else []
    if not stores:
        raise fail(f"no index store under {root}: run `gridgov index build`", code=2)
    console = Console()
    for store in stores:
        table = Table(title=str(store), show_header=False)
        table.add_column("field")
        table.add_column("value")
        try:
            manifest: dict[str, Any] = read_manifest(store)
        except IndexStoreError as exc:
            table.add_row("unusable", str(exc))
            console.print(table)
            continue
        scope = manifest["scope"]
        built = dt.datetime.fromtimestamp(float(manifest["built_at"]), tz=dt.UTC)
        table.add_row("format", str(manifest["format"]))
        table.add_row("library version", " / ".join(str(v) for v in manifest["fingerprint"]))
        table.add_row("built at", f"{built:%Y-%m-%d %H:%M:%S} UTC ({manifest['build_s']:.1f} s)")
        table.add_row("city", str(manifest["city_code"]))
        table.add_row("scope", scope if isinstance(scope, str) else ", ".join(scope))
        table.add_row("addresses", f"{manifest['rows']:,}")
        table.add_row("towns", f"{len(manifest['towns'])}")
        table.add_row("size on disk", f"{_size_mb(store):,.1f} MB in {len(manifest['files'])} files")
        console.print(table)
