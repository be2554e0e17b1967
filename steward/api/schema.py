"""OpenAPI postprocessing: every operation documents the errors it can answer with, in the one error format."""

from __future__ import annotations

from typing import Any

__all__ = ["ERROR_SCHEMA", "LOOKS_UP", "document_errors"]

# For ``extend_schema(extensions=LOOKS_UP)``: an operation that finds its object from query parameters (404).
LOOKS_UP = {"x-steward-errors": ["404"]}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The API's one error format (steward/api/exceptions.py).",
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status, repeated."},
        "code": {"type": "string", "description": "What went wrong, for programs: validation_error, not_found..."},
        "detail": {"type": "string", "description": "What went wrong, for people; names the first bad field."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {
                        "type": "string",
                        "nullable": True,
                        "description": "A dotted path into the request: datasets[3].name, cursor, body.",
                    },
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["field", "code", "message"],
            },
        },
    },
    "required": ["status", "code", "detail", "errors"],
}

_WHY = {  # status -> (component name, description)
    "400": ("BadRequest", "Bad input: each problem names its field (query parameter, path or body path)."),
    "401": ("Unauthorized", "No credentials, or an invalid, expired or revoked API token."),
    "403": ("Forbidden", "Authenticated, but not allowed: a role is missing or the object is not yours to change."),
    "404": ("NotFound", "No such object, or one you may not see."),
    "409": ("Conflict", "Conflicts with the current state (a duplicate, an overlap, a state that forbids this)."),
    "413": ("PayloadTooLarge", "The body is larger than this endpoint accepts."),
    "415": ("UnsupportedMediaType", "The body is not application/json."),
    "503": (
        "ComeBackLater",
        "Cannot take this now, and nothing was stored: send the same request again after Retry-After seconds "
        "(queued lineage ingestion while its inbox is full).",
    ),
}
_WRITES = ("post", "put", "patch", "delete")


def _errors_for(method: str, operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    codes = list(operation.pop("x-steward-errors", []))
    if has_body or params:
        codes.append("400")
    if operation.get("security", [{}]) != [{}]:
        codes += ["401", "403"]
    if any(p.get("in") == "path" for p in params) and "404" not in codes:
        codes.append("404")
    if method in _WRITES:
        codes.append("409")
    if has_body:
        codes += ["413", "415"]
    return codes


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the ``Error`` component and, to each operation, the 4xx it can
    answer with (by what it takes: parameters and bodies can be bad, path objects missing, writes conflict;
    an operation adds others with ``extend_schema(extensions={"x-steward-errors": [...]})``)."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    shared = components.setdefault("responses", {})
    for name, why in _WHY.values():
        shared[name] = {"description": why, "content": content}
    shared[_WHY["503"][0]]["headers"] = {
        "Retry-After": {"description": "Seconds to wait before sending again.", "schema": {"type": "integer"}}
    }
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "head", "options", *_WRITES):
                continue
            responses = operation.setdefault("responses", {})
            for code in _errors_for(method, operation):
                responses.setdefault(code, {"$ref": f"#/components/responses/{_WHY[code][0]}"})
    return result
