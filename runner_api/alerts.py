"""Quota alerts: raised when usage crosses a threshold (default 80% and 100%) or a request is refused.

An alert fires once per upward crossing: the highest threshold crossed is remembered per scope and
resource, and forgotten when usage falls back below it, so the next climb alerts again. Alerts are
kept per tenant in a Redis stream (the API serves them), counted for Prometheus, and POSTed to an
optional webhook signed with HMAC-SHA256 over the body.
"""

import hashlib
import hmac
import json
import logging
import time
from enum import StrEnum

import requests

from runner_api import store

DEFAULT_THRESHOLDS = (80, 100)
KEEP = 1000  # alerts kept per tenant
WEBHOOK_TIMEOUT = 3.0
log = logging.getLogger(__name__)


class AlertKind(StrEnum):
    THRESHOLD = "threshold"
    REFUSED = "refused"


def thresholds(custom_fields: dict) -> list[int]:
    raw = (custom_fields or {}).get("quota_alert_thresholds")
    valid = [int(t) for t in raw or [] if isinstance(t, int | float) and 0 < t <= 1000]
    return sorted(set(valid)) or list(DEFAULT_THRESHOLDS)


def crossings(redis, tenant: str, scope: str, report: list[dict], levels: list[int]) -> list[dict]:
    """The thresholds newly crossed by this usage report; remembers what is crossed now."""
    key = store.quota_state(tenant)
    before = redis.hgetall(key)
    fired, now = [], {}
    for item in report:
        field = f"{scope}|{item['resource']}"
        crossed = max((t for t in levels if item["percent"] >= t), default=0)
        now[field] = crossed
        if crossed > int(before.get(field, 0)):
            fired.append(_alert(tenant, AlertKind.THRESHOLD, scope, item["resource"], crossed,
                                f"{scope} uses {item['percent']}% of its {item['resource']} quota "
                                f"({item['used']} of {item['limit']}; threshold {crossed}%)"))
    if now:
        redis.hset(key, mapping=now)
    return fired


def refused(tenant: str, violations: list[str]) -> dict:
    return _alert(tenant, AlertKind.REFUSED, "request", "quota", 100, "refused: " + "; ".join(violations))


def _alert(tenant: str, kind: AlertKind, scope: str, resource: str, threshold: int, message: str) -> dict:
    level = "critical" if threshold >= 100 else "warning"
    return {"tenant": tenant, "kind": str(kind), "level": level, "scope": scope, "resource": resource,
            "threshold": threshold, "message": message, "at": time.time()}


def publish(redis, alerts: list[dict], webhook_url: str = "", webhook_secret: str = "") -> None:
    """Keep, count and deliver. The webhook is best effort: its outcome is recorded on the alert."""
    for alert in alerts:
        if webhook_url:
            alert["delivered"] = deliver(webhook_url, webhook_secret, alert)
        pipe = redis.pipeline()
        pipe.xadd(store.tenant_alerts(alert["tenant"]), {"alert": json.dumps(alert)}, maxlen=KEEP, approximate=True)
        pipe.hincrby(store.METRIC_ALERTS, f"{alert['tenant']}|{alert['kind']}|{alert['level']}", 1)
        pipe.execute()
        log.info("quota alert for %s: %s", alert["tenant"], alert["message"])


def deliver(url: str, secret: str, alert: dict) -> bool:
    body = json.dumps({"type": "gpucloud.quota_alert", "alert": alert}, sort_keys=True).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Gpucloud-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    try:
        response = requests.post(url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
        return response.status_code < 300
    except requests.RequestException as exc:
        log.warning("quota alert webhook failed: %s", type(exc).__name__)
        return False


def recent(redis, tenant: str, limit: int = 100) -> list[dict]:
    return [{"id": eid} | json.loads(fields["alert"])
            for eid, fields in redis.xrevrange(store.tenant_alerts(tenant), count=limit)]
