"""WSGI entry point: `gunicorn runner_api.wsgi:app` (configuration from the environment)."""

from runner_api import create_app

app = create_app()
