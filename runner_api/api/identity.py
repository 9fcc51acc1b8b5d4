"""The caller's identity."""

from flask import Blueprint, g

from runner_api.openapi import operation

bp = Blueprint("identity", __name__, url_prefix="/v1/whoami")


@bp.get("")
@operation("Who the token belongs to: subject, role and tenant", tag="identity")
def whoami():
    return g.principal.as_dict()
