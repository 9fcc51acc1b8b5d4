"""Runner configuration, read once from the environment.

Every process (API, worker, CLI admin commands) builds the same Settings from the same variables,
so a worker on another machine only needs the Redis URL, the NetBox URL/token and a checkout.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}: expected an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    redis_url: str
    netbox_url: str
    netbox_token: str = field(repr=False)
    data_dir: Path
    catalogue: Path
    repo: Path = REPO
    inventory_options: dict = field(default_factory=dict)
    inventory_ttl: int = 15
    heartbeat_ttl: int = 10
    retention_hours: int = 168
    default_concurrency: int = 4
    netbox_timeout: float = 10.0
    # Plain-http issuers/JWKS on loopback, for labs and tests; never on in production.
    oidc_allow_http_loopback: bool = False
    # Clusters: the stages each kind goes through, the fabric's inventory (switches, subnet manager)
    # for the stages that configure it, and environment variables those operator-written stages may
    # read (BMC credential references resolve through them); tenants' own playbooks never get them.
    cluster_stages: Path = REPO / "playbooks" / "clusters.yml"
    fabric_inventory: str = ""
    job_env: tuple[str, ...] = ()
    cost_enabled: bool = True
    currency: str = "USD"
    alert_webhook_url: str = ""
    alert_webhook_secret: str = field(default="", repr=False)

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def inventories_dir(self) -> Path:
        return self.data_dir / "inventories"

    @property
    def ansible_cfg(self) -> Path:
        return self.repo / "ansible.cfg"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = dict(
            redis_url=os.environ.get("GPUCLOUD_REDIS_URL", "redis://127.0.0.1:6379/0"),
            netbox_url=os.environ.get("NETBOX_URL", "").rstrip("/"),
            netbox_token=os.environ.get("NETBOX_TOKEN", "").strip(),
            data_dir=Path(os.environ.get("GPUCLOUD_DATA_DIR", REPO / ".state" / "runner")),
            catalogue=Path(os.environ.get("GPUCLOUD_CATALOGUE", REPO / "playbooks" / "catalogue.yml")),
            inventory_options=_load_options(os.environ.get("GPUCLOUD_INVENTORY_OPTIONS")),
            inventory_ttl=_env_int("GPUCLOUD_INVENTORY_TTL", 15),
            heartbeat_ttl=_env_int("GPUCLOUD_HEARTBEAT_TTL", 10),
            retention_hours=_env_int("GPUCLOUD_RETENTION_HOURS", 168),
            default_concurrency=_env_int("GPUCLOUD_DEFAULT_CONCURRENCY", 4),
            oidc_allow_http_loopback=os.environ.get("GPUCLOUD_OIDC_ALLOW_HTTP_LOOPBACK") == "1",
            cluster_stages=Path(os.environ.get("GPUCLOUD_CLUSTER_STAGES", REPO / "playbooks" / "clusters.yml")),
            fabric_inventory=os.environ.get("GPUCLOUD_FABRIC_INVENTORY", ""),
            job_env=tuple(n for n in os.environ.get("GPUCLOUD_JOB_ENV", "").split(",") if n.strip()),
            cost_enabled=os.environ.get("GPUCLOUD_COST", "on").lower() not in ("off", "0", "false", "no"),
            currency=os.environ.get("GPUCLOUD_CURRENCY", "USD"),
            alert_webhook_url=os.environ.get("GPUCLOUD_ALERT_WEBHOOK_URL", ""),
            alert_webhook_secret=os.environ.get("GPUCLOUD_ALERT_WEBHOOK_SECRET", ""),
        )
        values.update(overrides)
        return cls(**values)


def _load_options(path: str | None) -> dict:
    """Extra inventory-plugin options (e.g. the lab's `compose`), kept out of tenant reach."""
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"GPUCLOUD_INVENTORY_OPTIONS: {path} must hold a mapping")
    return data
