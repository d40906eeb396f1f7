"""Alembic environment: the complete metadata of every domain package, geoalchemy2-aware."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool
from sqlalchemy.schema import CreateSchema

from gis.schema import load_all_models

config = context.config
target_metadata = load_all_models()

SCHEMAS = ("synthetic",)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave PostGIS's own tables and other extensions' objects alone."""
    if type_ == "table" and name in {"spatial_ref_sys"}:
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        include_schemas=True,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)
    with engine.connect() as connection:
        for schema in SCHEMAS:
            connection.execute(CreateSchema(schema, if_not_exists=True))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,
            include_name=lambda name, type_, parent: type_ != "schema" or name in (None, "public", *SCHEMAS),
            include_object=include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
