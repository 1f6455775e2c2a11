"""Finishing touches on the generated OpenAPI schema: limits that come from settings, and an
example body for every declared status."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["complete_schema"]

_422_EXAMPLE = {
    "detail": [
        {
            "type": "missing",
            "loc": ["body", "user_ids"],
            "msg": "Field required",
        }
    ]
}


def complete_schema(
    schema: dict[str, Any], *, max_body_bytes: int, batch_max_users: int
) -> dict[str, Any]:
    """The schema with: every operation that takes a body declaring 400 and 413 (and the body
    limit in its description); the batch size limit as the schema's `maxItems`; an example for
    every error response that has none."""
    schema = copy.deepcopy(schema)
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            body = operation.get("requestBody")
            if body is not None:
                body["description"] = (
                    f"JSON, at most {max_body_bytes} bytes (SHARDLENS_MAX_BODY_BYTES; 413 beyond)"
                )
                responses.setdefault(
                    "400",
                    {
                        "description": "The body cannot be parsed: not UTF-8 JSON.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}
                            }
                        },
                    },
                )
                responses.setdefault(
                    "413",
                    {
                        "description": "Request body larger than SHARDLENS_MAX_BODY_BYTES.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}
                            }
                        },
                    },
                )
            for code, response in responses.items():
                if not code.isdigit() or int(code) < 400:
                    continue
                content = response.setdefault("content", {}).setdefault("application/json", {})
                content.setdefault("schema", {"$ref": "#/components/schemas/ErrorBody"})
                if "example" not in content and "examples" not in content:
                    content["example"] = (
                        _422_EXAMPLE
                        if code == "422"
                        else {"detail": response.get("description", "")}
                    )
    batch = schema.get("components", {}).get("schemas", {}).get("BatchRequest")
    if batch is not None:
        batch["properties"]["user_ids"]["maxItems"] = batch_max_users
    return schema
