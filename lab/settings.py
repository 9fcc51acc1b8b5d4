"""Where the lab keeps its state, its caches and which loopback ports it uses.

State (databases, configuration, pids, the API token) lives in a git-ignored directory in the
checkout, so `down` and a fresh clone never touch another checkout's services. Caches that are
expensive to rebuild (virtualenvs, migrated and populated database dumps) live outside the
checkout and are shared by every clone on the machine.
"""

import os
from dataclasses import dataclass
from pathlib import Path

NETBOX_VERSION = "4.7.3"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    repo: Path
    state: Path
    cache: Path
    pg_port: int
    redis_port: int
    netbox_port: int
    api_port: int = 58080
    # The lab's Slurm daemons: a slurmd per server at base + its NetBox id, a cluster's slurmctld 10000 above.
    slurm_port_base: int = 20000
    netbox_version: str = NETBOX_VERSION

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "log"

    @property
    def netbox_root(self) -> Path:
        return self.state / "netbox"

    @property
    def netbox_venv(self) -> Path:
        return self.cache / "venvs" / f"netbox-{self.netbox_version}"

    @property
    def dumps(self) -> Path:
        return self.cache / "dumps"

    @property
    def netbox_url(self) -> str:
        return f"http://127.0.0.1:{self.netbox_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/2"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def runner_data(self) -> Path:
        return self.state / "runner"

    @property
    def env_file(self) -> Path:
        """Shell-sourceable NETBOX_URL/NETBOX_TOKEN/REDIS_URL for the playbooks and the API."""
        return self.state / "lab.env"


def load() -> Settings:
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Settings(
        repo=REPO,
        state=Path(os.environ.get("GPUCLOUD_STATE", REPO / ".state")).resolve(),
        cache=Path(os.environ.get("GPUCLOUD_CACHE", cache_home / "gpucloud")).resolve(),
        pg_port=int(os.environ.get("GPUCLOUD_PG_PORT", "55432")),
        redis_port=int(os.environ.get("GPUCLOUD_REDIS_PORT", "56379")),
        netbox_port=int(os.environ.get("GPUCLOUD_NETBOX_PORT", "58000")),
        api_port=int(os.environ.get("GPUCLOUD_API_PORT", "58080")),
        slurm_port_base=int(os.environ.get("GPUCLOUD_SLURM_PORT_BASE", "20000")),
    )
