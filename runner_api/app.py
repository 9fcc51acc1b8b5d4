"""The Flask application factory."""

import logging
import random
import re
import uuid

from flask import Flask, current_app, g, request

from runner_api import audit as audit_log
from runner_api import errors
from runner_api.api import (
    audit,
    clusters,
    docs,
    health,
    identity,
    jobs,
    onboarding,
    playbooks,
    projects,
    quotas,
    tenants,
    tokens,
    users,
)
from runner_api.auth import authenticate
from runner_api.runtime import Runtime, runtime
from runner_api.settings import Settings

CORRELATION_HEADER = "X-Correlation-ID"
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
BLUEPRINTS = (health.bp, docs.bp, identity.bp, playbooks.bp, jobs.bp, tenants.bp, tokens.bp, audit.bp, clusters.bp,
              quotas.bp, onboarding.bp, users.bp, projects.bp)


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.json.sort_keys = False
    app.extensions["gpucloud"] = Runtime.build(settings or Settings.from_env())
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    errors.register(app)
    app.before_request(_before)
    app.after_request(_after)
    logging.getLogger("runner_api").setLevel(logging.INFO)
    return app


def new_correlation_id() -> str:
    """A trace id, not a secret: uuid4's getrandom() per request shows up on a busy API; this does not."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _before() -> None:
    incoming = request.headers.get(CORRELATION_HEADER, "")
    g.correlation_id = incoming if CORRELATION_ID.match(incoming) else new_correlation_id()
    g.principal = None
    if not _is_public(current_app.view_functions.get(request.endpoint)):
        g.principal = authenticate()


def _is_public(view) -> bool:
    """Public views say so; unknown paths authenticate first, so they do not reveal what exists."""
    return bool(getattr(view, "public", False) or (getattr(view, "openapi", None) or {}).get("public"))


def _after(response):
    response.headers[CORRELATION_HEADER] = g.get("correlation_id", "")
    if request.method in STATE_CHANGING and not g.get("audited"):
        _audit(response.status_code)
    return response


def _audit(status: int) -> None:
    """Every state-changing call, refused ones included; views name the action and target."""
    principal = g.get("principal")
    rule = request.url_rule.rule if request.url_rule else request.path
    action, target, tenant = g.get("audit") or (f"{request.method} {rule}", request.path, None)
    try:
        audit_log.record(runtime().store.redis, principal, action, target, g.get("correlation_id", ""), status,
                     tenant=tenant)
    except Exception:
        logging.getLogger(__name__).exception("audit record lost for %s %s", request.method, request.path)
