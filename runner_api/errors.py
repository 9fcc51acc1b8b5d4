"""The API's errors, flat, and the one place that turns them into RFC 9457 problem documents."""

import logging

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, errors: list[dict] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class BadRequest(ApiError):
    status = 400
    title = "Bad request"


class ValidationFailed(ApiError):
    """Every problem with the input at once, each naming its field."""

    status = 422
    title = "Validation failed"

    def __init__(self, errors: list[dict]):
        fields = ", ".join(e["field"] for e in errors)
        super().__init__(f"invalid input: {fields}", errors)


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    status = 404
    title = "Not found"


class Conflict(ApiError):
    status = 409
    title = "Conflict"


class ServiceUnavailable(ApiError):
    status = 503
    title = "Service unavailable"


def problem(status: int, title: str, detail: str, errors: list[dict] | None = None):
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    cid = g.get("correlation_id")
    if cid:
        body["correlation_id"] = cid
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gpucloud"'
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return problem(exc.status, exc.title, exc.detail, exc.errors)

    @app.errorhandler(NetBoxError)
    def _netbox_error(exc: NetBoxError):
        log.warning("NetBox failed (correlation id %s): %s", g.get("correlation_id"), exc)
        return problem(503, "Service unavailable", "NetBox is unavailable or refused the request; try again later")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return problem(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error (correlation id %s)", g.get("correlation_id"))
        return problem(500, "Internal error", "unexpected error; quote the correlation id when reporting it")
