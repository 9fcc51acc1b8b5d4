"""The OpenAPI document and interactive docs (Swagger UI, served from the installed package)."""

from flask import Blueprint, current_app, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from runner_api import openapi

bp = Blueprint("docs", __name__)
PAGE = """<!doctype html><html><head><title>gpucloud runner API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"""


@bp.get("/openapi.json")
def spec():
    return openapi.build(current_app)


@bp.get("/docs")
def page():
    return PAGE


@bp.get("/docs/<path:name>")
def asset(name):
    return send_from_directory(swagger_ui_path, name)


for _view in (spec, page, asset):
    _view.public = True
