"""The runner API over HTTP: bearer auth, and error responses or network trouble as one-line CLI errors."""

from collections.abc import Iterable
from urllib.parse import quote

import click
import requests

from runner_api.cli.output import clean

LOGIN_HINT = "run `gpucloud login` (or set GPUCLOUD_TOKEN)"
TIMEOUT = (5, 30)  # connect, read
STREAM_TIMEOUT = (5, 60)  # the API sends a keepalive every 15 s, so 60 s of silence is a dead connection


class CliError(click.ClickException):
    """One `error:` line, then the field errors, a hint and the correlation id; exit status 2."""

    exit_code = 2

    def __init__(self, message: str, details: Iterable[str] = (), hint: str | None = None,
                 correlation_id: str | None = None):
        super().__init__(message)
        self.details = list(details)
        self.hint = hint
        self.correlation_id = correlation_id

    def show(self, file=None) -> None:
        err = file is None
        click.echo(f"error: {self.message}", file=file, err=err)
        for line in self.details:
            click.echo(f"  {line}", file=file, err=err)
        if self.hint:
            click.echo(self.hint, file=file, err=err)
        if self.correlation_id:
            click.echo(f"(correlation id {self.correlation_id})", file=file, err=err)


class Unreachable(CliError):
    """The network failed us, not the API: streams reconnect on this one."""

    def __init__(self, url: str, cause: str, what: str = "the gpucloud API"):
        super().__init__(f"cannot reach {what} at {url} ({cause})")
        self.cause = cause


def problem(response: requests.Response) -> CliError:
    """An RFC 9457 problem document (or any error response) as a CliError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    detail = body.get("detail") or body.get("title") or f"HTTP {response.status_code} {response.reason}"
    details = [f"{clean(str(e.get('field')))}: {clean(str(e.get('message')))}"
               for e in body.get("errors") or [] if isinstance(e, dict)]
    hint = LOGIN_HINT if response.status_code == 401 else None
    cid = body.get("correlation_id") or response.headers.get("X-Correlation-ID")
    return CliError(clean(str(detail)), details, hint, cid)


def reason(exc: Exception) -> str:
    """A short cause for a network error; requests' own messages run to several lines of urllib3 repr."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    text = str(exc)
    for cause in ("Connection refused", "Name or service not known", "No route to host", "Connection reset"):
        if cause in text:
            return cause.lower()
    return type(exc).__name__


def part(value: str) -> str:
    """One URL path segment: an id typed on the command line cannot reach another endpoint."""
    return quote(value, safe="")


class Api:
    """requests with bearer auth; error responses become CliError, network trouble one Unreachable line."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "gpucloud-cli"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params):
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None):
        return self.call("POST", path, json=body if body is not None else {})

    def patch(self, path: str, body: dict):
        return self.call("PATCH", path, json=body)

    def delete(self, path: str):
        return self.call("DELETE", path)

    def call(self, method: str, path: str, **kwargs):
        response = self.send(method, path, timeout=TIMEOUT, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:  # something else answers at this URL
            raise CliError(f"{self.url} did not answer with JSON: is it the gpucloud API?") from None

    def stream(self, path: str, headers: dict) -> requests.Response:
        return self.send("GET", path, headers=headers, stream=True, timeout=STREAM_TIMEOUT)

    def send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Unreachable(self.url, reason(exc)) from None
        except requests.RequestException as exc:
            raise CliError(f"bad API URL {self.url!r}: {exc}") from None
        if response.status_code >= 400:
            raise problem(response)
        return response
