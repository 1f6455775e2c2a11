"""Request parameters shared by routes: public text ids, and scalar parameters given once."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator

from common.ids import ID_PATTERN, MAX_ID_LENGTH, id_problem

_PATTERN = re.compile(ID_PATTERN)


def possible_id(value: str) -> str:
    """Refuse (422) text that the schema's pattern refuses, saying why. The pattern is read
    as Python's `re.match` (and JSON Schema validators in Python) read it, where `$` also
    matches before a final newline: such a value passes here and is simply not found (404),
    since no loaded id can hold a control character."""
    if not _PATTERN.match(value):
        raise ValueError(f"not an id: {id_problem(value)}")
    return value


_ID_DOC = (
    "the source's own id, as text: a MovieLens id is its decimal text ('405'), an "
    "interactions file keeps its ids ('tt0111161')"
)
# The pattern is stated in the schema; `possible_id` checks the same and says why.
_SCHEMA = {"pattern": ID_PATTERN}
UserId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description=f"user id: {_ID_DOC}",
        json_schema_extra=_SCHEMA,
    ),
    AfterValidator(possible_id),
]
MovieId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description=f"movie id: {_ID_DOC}",
        json_schema_extra=_SCHEMA,
    ),
    AfterValidator(possible_id),
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
    instead of silently using one of the values, and when one has no name (`?=1`)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    if "" in request.query_params:  # `?=214`: a value without a parameter name
        raise RequestValidationError(
            [
                {
                    "type": "unnamed_parameter",
                    "loc": ("query", ""),
                    "msg": "a query parameter has no name; write name=value",
                    "input": request.query_params.getlist(""),
                }
            ]
        )
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


class _RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _RepeatedKey(key)
        seen[key] = value
    return seen


async def unique_json_keys(request: Request) -> None:
    """422 naming the key when a JSON body repeats one (`{"seed": 1, "seed": 2}`), instead
    of silently keeping the last value, as for repeated query parameters. Runs after FastAPI
    parsed the body (malformed JSON is already a 422), on the same cached bytes."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media and not (media == "application/json" or media.endswith("+json")):
        return
    body = await request.body()
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=_no_repeats)
    except _RepeatedKey as exc:
        raise RequestValidationError(
            [
                {
                    "type": "repeated_key",
                    "loc": ("body", exc.key),
                    "msg": f"the key {exc.key!r} is given more than once in a JSON object; "
                    "give it once",
                    "input": exc.key,
                }
            ]
        ) from None
    except ValueError:
        return  # not JSON: FastAPI's own parsing reports it
