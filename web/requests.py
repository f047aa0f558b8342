"""Reading request bodies and query parameters into validated models."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from web.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
Model = TypeVar("Model", bound=BaseModel)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit()):  # "²" passes isdigit() alone
        raise ApiError(400, "bad_content_length", "Content-Length must be a whole number of bytes")
    if declared is not None and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
    request.state.raw_body = body  # a signature check may need the exact bytes again
    return body


async def parse_body(request: Request, model: type[Model]) -> Model:
    body = await read_body(request)
    if not body.strip():
        raise ApiError(400, "empty_body", "a JSON body is required")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise ApiError.from_validation(error) from None


def parse_query(request: Request, model: type[Model]) -> Model:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as error:
        raise ApiError.from_validation(error) from None
