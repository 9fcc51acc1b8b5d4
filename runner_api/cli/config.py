"""Login state: the 0600 config file with the API URL and token, and the environment that overrides it."""

import json
import os
import tempfile
from pathlib import Path

from runner_api.cli.client import LOGIN_HINT, Api, CliError

URL_ENV = "GPUCLOUD_API_URL"
TOKEN_ENV = "GPUCLOUD_TOKEN"
CONFIG_ENV = "GPUCLOUD_CONFIG"


def config_path() -> Path:
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "gpucloud" / "config.json"


def read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the config file {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def write_config(path: Path, data: dict) -> None:
    """Atomically, and 0600 from the first byte: the file holds a bearer token."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    path.chmod(0o600)


def connect() -> Api:
    """The API as the saved login, or the environment, says."""
    config = read_config(config_path())
    url = os.environ.get(URL_ENV) or config.get("url")
    token = os.environ.get(TOKEN_ENV) or config.get("token")
    if not url:
        raise CliError("no API URL configured", hint="run `gpucloud login --url URL` (or set GPUCLOUD_API_URL)")
    if not token:
        raise CliError("not logged in", hint=LOGIN_HINT)
    return Api(url, token)
