"""`field__any=values`: `field = ANY(%s)`, the values passed as one array parameter.

`field__in=values` spells one placeholder per value. For the hundreds of ids and serials of an
ingestion worker's chunk, building, sending and planning that list cost milliseconds a query;
an array is one parameter. Values are those the column holds (ids, serials), not a query.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> tuple[str, list]:
        # Values as the column holds them (ids, serials): psycopg sends the list as an array.
        return "%s", [list(value)]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def register() -> None:
    Field.register_lookup(AnyOf)
    ForeignObject.register_lookup(AnyOf)  # relations keep their own lookups; values are keys
