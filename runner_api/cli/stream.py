"""A job's events over server-sent events, resumed from Last-Event-ID whenever the connection drops."""

import codecs
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests

from runner_api.cli.client import Api, Unreachable, part, reason

MAX_FAILURES = 10  # consecutive failed reconnects before a stream gives up
IDLE = "idle"  # pseudo event: an SSE keepalive comment, or a reconnect
END = "job_end"
FINISHED = ("successful", "failed", "canceled", "timeout")


class SseParser:
    """Server-sent events, one line at a time; `retry` follows what the server asks."""

    def __init__(self, retry: float = 2.0):
        self.retry = retry
        self._reset()

    def _reset(self) -> None:
        self.id, self.name, self.data = None, "message", []

    def feed(self, line: str) -> tuple[str | None, str, str] | None:
        """(id, event name, data) when a frame completes; comment lines come back as IDLE."""
        if not line:
            frame = (self.id, self.name, "\n".join(self.data)) if self.data else None
            self._reset()
            return frame
        if line.startswith(":"):
            return None, IDLE, ""
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self.data.append(value)
        elif field == "id":
            self.id = value
        elif field == "event":
            self.name = value
        elif field == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None


def response_lines(response: requests.Response) -> Iterator[str]:
    """Lines as they arrive (iter_lines buffers, and would split UTF-8 across chunks)."""
    decoder, buffer = codecs.getincrementaldecoder("utf-8")("replace"), ""
    for chunk in response.iter_content(chunk_size=None):
        buffer += decoder.decode(chunk)
        *lines, buffer = buffer.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    if buffer:
        yield buffer.rstrip("\r")


@dataclass
class StreamState:
    """What survives a dropped connection: where to resume, and how long the server asks us to wait."""

    last_id: str | None = None
    retry: float = 2.0
    opened: bool = False  # the current connection got a 200
    ever_opened: bool = False
    failures: int = 0  # consecutive connections that never opened


def stream_events(api: Api, job_id: str, last_id: str | None = None) -> Iterator[dict]:
    """The job's events until job_end, resuming from Last-Event-ID whenever the stream drops.

    Also yields IDLE markers (a keepalive, or a reconnect) so callers can look at a quiet job.
    A stream that opened and then broke is simply reopened; only connections that fail to open
    count towards giving up, so a long quiet job is followed however often its stream drops.
    """
    state = StreamState(last_id)
    while True:
        state.opened = False
        try:
            for event in sse_connection(api, job_id, state):
                yield event
                if event["event"] == END:
                    return
            # Closed without job_end: the job may have expired (404 raises) or its events been trimmed.
            job = api.get(f"/v1/jobs/{part(job_id)}")
            if job["status"] in FINISHED:
                yield {"event": END, "id": None, "status": job["status"], "reason": job["reason"],
                       "changed": job["changed"]}
                return
        except (Unreachable, requests.RequestException) as exc:
            if not state.ever_opened and isinstance(exc, Unreachable):
                raise  # never reached the API at all: say so now rather than after every retry
            state.failures = 0 if state.opened else state.failures + 1
            if state.failures > MAX_FAILURES:
                cause = exc.cause if isinstance(exc, Unreachable) else reason(exc)
                raise Unreachable(api.url, cause, f"the event stream of job {job_id}") from None
        time.sleep(state.retry if state.failures else 0.2)  # reopen a broken stream at once, else as asked
        yield {"event": IDLE, "id": None}


def sse_connection(api: Api, job_id: str, state: StreamState) -> Iterator[dict]:
    """One SSE connection's events, resuming after `state.last_id` and keeping it current."""
    headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": state.last_id} if state.last_id else {})
    parser = SseParser(state.retry)
    with api.stream(f"/v1/jobs/{part(job_id)}/events", headers) as response:
        state.opened = state.ever_opened = True
        state.failures = 0
        for line in response_lines(response):
            frame = parser.feed(line)
            state.retry = parser.retry
            if frame is None:
                continue
            event_id, name, data = frame
            if name == IDLE:
                yield {"event": IDLE, "id": None}
                continue
            state.last_id = event_id or state.last_id
            yield {"event": name, "id": event_id} | event_data(data)


def event_data(data: str) -> dict:
    try:
        event = json.loads(data)
    except ValueError:
        return {"data": data}
    return {k: v for k, v in event.items() if k not in ("event", "id")} if isinstance(event, dict) else {"data": event}
