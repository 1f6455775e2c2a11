"""Request parameters shared by routes: strict decimal ids, and scalar parameters given once."""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BeforeValidator

MAX_ID = 2**63 - 1  # ids are int64 in the store
_DECIMAL = re.compile(r"-?[0-9]+")


def decimal_only(value: Any) -> Any:
    """Refuse what `int()` would otherwise accept: '+1', ' 1', '1_0', other scripts' digits."""
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError(
            "ids are written with the digits 0-9 only, e.g. 42 "
            "(no sign, spaces, underscores or other numerals)"
        )
    return value


UserId = Annotated[
    int,
    Path(ge=0, le=MAX_ID, description="original MovieLens user id"),
    BeforeValidator(decimal_only),
]
MovieId = Annotated[
    int,
    Path(ge=0, le=MAX_ID, description="original MovieLens movie id"),
    BeforeValidator(decimal_only),
]


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
    ):
        return True
    if origin in (Union, types.UnionType):
        return any(_is_sequence(arg) for arg in get_args(annotation))
    return False


async def single_valued_query(request: Request) -> None:
    """422 when a query parameter the route takes once is given several times (`?k=1&k=2`),
    instead of silently using one of the values."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    for field in route.dependant.query_params:
        values = request.query_params.getlist(field.alias)
        if len(values) > 1 and not _is_sequence(field.field_info.annotation):
            raise RequestValidationError(
                [
                    {
                        "type": "repeated_parameter",
                        "loc": ("query", field.alias),
                        "msg": f"given {len(values)} times; give it once",
                        "input": values,
                    }
                ]
            )
