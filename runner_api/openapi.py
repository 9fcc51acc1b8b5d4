"""The OpenAPI 3 document, built from the routes themselves: each view declares its summary,
parameters, body schema and responses with @operation, and the same schemas validate requests."""

import re

from flask import Flask, request
from jsonschema import Draft202012Validator

from runner_api.errors import ValidationFailed

PROBLEM = {"description": "Problem",
           "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
COMMON_ERRORS = {"401": PROBLEM, "403": PROBLEM, "404": PROBLEM, "422": PROBLEM, "503": PROBLEM}


def operation(summary: str, *, tag: str, body: dict | None = None, query: dict | None = None,
              responses: dict | None = None, public: bool = False):
    def decorate(view):
        view.openapi = {"summary": summary, "tag": tag, "body": body, "query": query or {},
                        "responses": responses or {"200": {"description": "OK"}}, "public": public}
        return view

    return decorate


_VALIDATORS: dict[int, tuple[dict, Draft202012Validator]] = {}


def validator(schema: dict) -> Draft202012Validator:
    """Compiled once per schema (they are module constants): building one costs more than most validations."""
    hit = _VALIDATORS.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema))
    return hit[1]


def query_args(view_query: dict) -> dict:
    """Query parameters typed and checked against the declared schemas; every error at once."""
    values, errors = {}, []
    for name, schema in view_query.items():
        raw = request.args.get(name)
        if raw is None:
            if "default" in schema:
                values[name] = schema["default"]
            continue
        value = raw
        if schema.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                errors.append({"field": name, "message": "expected an integer"})
                continue
        errors += [{"field": name, "message": e.message} for e in validator(schema).iter_errors(value)]
        values[name] = value
    if errors:
        raise ValidationFailed(errors)
    return values


def body_json(schema: dict) -> dict:
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationFailed([{"field": "body",
                                 "message": "expected a JSON object (Content-Type: application/json)"}])
    errors = []
    for error in validator(schema).iter_errors(data):
        path = ".".join(str(p) for p in error.path) or "body"
        if error.validator == "required":
            path = error.message.split("'")[1]
        elif error.validator == "additionalProperties":
            extra = sorted(set(data) - set(schema.get("properties", {}))) if isinstance(data, dict) else []
            path = ", ".join(extra) or path
        errors.append({"field": path, "message": error.message})
    if errors:
        raise ValidationFailed(errors)
    return data


def build(app: Flask) -> dict:
    paths: dict = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "openapi", None)
        if not meta:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, view, meta)
    return {
        "openapi": "3.0.3",
        "info": {"title": "gpucloud runner API", "version": "1",
                 "description": "Tenants launch catalogued playbooks, watch their events and cancel them."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "correlation_id": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "field": {"type": "string"}, "message": {"type": "string"}}}}}}},
        },
    }


def _operation(rule, view, meta: dict) -> dict:
    op = {"summary": meta["summary"], "tags": [meta["tag"]], "operationId": rule.endpoint.replace(".", "_"),
          "responses": dict(meta["responses"])}
    role = getattr(view, "required_role", None)
    if role:
        op["description"] = f"Requires the {role} role (or higher)."
    params = [{"name": arg, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 100}}
              for arg in sorted(rule.arguments)]
    params += [{"name": name, "in": "query", "required": False, "schema": schema}
               for name, schema in meta["query"].items()]
    if params:
        op["parameters"] = params
    if meta["body"] is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": meta["body"]}}}
    if not meta["public"]:
        op["security"] = [{"bearer": []}]
        op["responses"] = COMMON_ERRORS | op["responses"]
    return op
