"""What the API's request handlers share: settings, Redis stores, the catalogue, the inventory."""

from dataclasses import dataclass, field

from flask import current_app, g
from rq import Queue
from rq.serializers import JSONSerializer

from runner_api import catalogue, stages, store
from runner_api.admission import Admission
from runner_api.clusters import ClusterStore
from runner_api.fleet import Fleet
from runner_api.inventory import TenantInventory
from runner_api.jobs import JobStore
from runner_api.settings import Settings
from runner_api.tenants import TenantStore
from runner_api.tokens import TokenStore


@dataclass
class Runtime:
    settings: Settings
    store: store.Store
    tokens: TokenStore
    tenants: TenantStore
    jobs: JobStore
    admission: Admission
    inventory: TenantInventory
    catalogue: dict
    clusters: ClusterStore
    fleet: Fleet
    stage_plans: dict
    queues: dict[str, Queue] = field(default_factory=dict)

    def queue(self, tenant: str) -> Queue:
        """The tenant's RQ queue (JSON serializer), built once per process."""
        if tenant not in self.queues:
            self.queues[tenant] = Queue(store.queue_name(tenant), connection=self.store.rq,
                                        serializer=JSONSerializer)
        return self.queues[tenant]

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        shared = store.Store(settings.redis_url)
        entries = catalogue.with_task_counts(catalogue.load(settings.catalogue, settings.repo), settings.repo,
                                             settings.data_dir / "catalogue-tasks.json")
        inventory = TenantInventory(settings)
        return cls(settings, shared, TokenStore(shared.redis), TenantStore(shared.redis), JobStore(shared.redis),
                   Admission(shared.redis, settings.default_concurrency), inventory, entries,
                   ClusterStore(shared.redis), Fleet(inventory.client), stages.load(settings.cluster_stages, entries))


def runtime() -> Runtime:
    return current_app.extensions["gpucloud"]


def principal():
    return g.principal
