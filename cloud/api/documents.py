"""Large JSON bodies read after authentication: ``DocumentBody(Model)``.

FastAPI reads and parses a declared body before it runs any dependency, so an anonymous client
could make the service parse megabytes of JSON before the 401. The document routes (ASNs,
counts) instead take their body through this dependency, declared after the role check: the
caller is known before a byte of the body is read, the body is held to the route's limit by the
request-limit middleware as it streams, and pydantic parses it straight from bytes. Validation
errors do not echo the input (it may be huge or hostile).

>>> from pydantic import BaseModel
>>> class Thing(BaseModel):
...     name: str
>>> body_schema(Thing)["requestBody"]["content"]["application/json"]["schema"]["required"]
['name']
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def document_body(model: type[M]) -> Any:
    """A dependency that parses the request body as ``model`` (422 without echoed input)."""

    async def read(request: Request) -> M:
        raw = await request.body()
        try:
            return model.model_validate_json(raw)
        except ValidationError as err:
            errors = [
                {"loc": ["body", *item["loc"]], "msg": item["msg"], "type": item["type"]}
                for item in err.errors(include_input=False, include_url=False)[:50]
            ]
            raise RequestValidationError(errors) from err

    return Depends(read)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body, ``$defs`` inlined.

    OpenAPI resolves ``$ref`` from the document root, not from an inline schema, so the
    model's local definitions are substituted in place (these models are not recursive).
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": resolve(schema)}},
        }
    }
