"""WSGI entry point, configured from the environment.

`granian --interface wsgi runner_api.wsgi:app` (what the lab runs), or any other WSGI server.
"""

from runner_api import create_app

app = create_app()
