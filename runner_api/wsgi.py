"""WSGI entry point, configured from the environment.

`granian --interface wsgi runner_api.wsgi:app` (what the lab runs), or any other WSGI server.
Logs go to stderr, one line per record, so the server's log keeps tracebacks with correlation ids.
"""

import logging

from runner_api import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
