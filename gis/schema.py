"""gis.schema: the one SQLAlchemy MetaData every domain package registers its tables on."""

from __future__ import annotations

from sqlalchemy import MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Domain packages whose `models` modules define tables on `metadata`. The migration environment imports
# them by name, so that gis stays below every domain package in the layer order.
MODEL_MODULES: tuple[str, ...] = (
    "grids.models",
    "address_library.models",
    "supervision.models",
    "synthetic.models",
    "api.auth.models",
    "maps.models",
    "planning.models",
)


def load_all_models() -> MetaData:
    """Import every domain model module and return the complete metadata."""
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return metadata
