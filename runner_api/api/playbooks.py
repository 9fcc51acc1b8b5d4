"""The playbook catalogue."""

from flask import Blueprint

from runner_api.openapi import operation
from runner_api.runtime import runtime

bp = Blueprint("playbooks", __name__, url_prefix="/v1/playbooks")


@bp.get("")
@operation("Catalogued playbooks and the variables each accepts", tag="playbooks")
def list_playbooks():
    return {"items": [entry.as_dict() for entry in runtime().catalogue.values() if not entry.internal]}

