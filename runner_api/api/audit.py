"""The audit trail, for platform admins."""

from flask import Blueprint

from runner_api import audit
from runner_api.auth import requires
from runner_api.openapi import operation, query_args
from runner_api.principal import Role
from runner_api.runtime import runtime

bp = Blueprint("audit", __name__, url_prefix="/v1/audit")
QUERY = {
    "tenant": {"type": "string", "maxLength": 50},
    "action": {"type": "string", "maxLength": 100},
    "after": {"type": "string", "pattern": r"^\d{1,19}-\d{1,19}$"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
}


@bp.get("")
@requires(Role.PLATFORM_ADMIN)
@operation("Audit records, newest first", tag="audit", query=QUERY)
def list_records():
    args = query_args(QUERY)
    items = audit.query(runtime().store.redis, args.get("after"), args["limit"], args.get("tenant"),
                        args.get("action"))
    return {"items": items, "next_after": items[-1]["id"] if len(items) == args["limit"] else None}
