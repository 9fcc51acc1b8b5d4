"""Onboarding and offboarding a tenant, as named steps that can be watched and resumed.

Every step is an "ensure": it reads what exists and does only what is missing, so running a finished step
again is a cheap no-op. That is what makes a flow resumable: after a failure at any step, the same request
again runs every step, the finished ones change nothing, and the flow continues where it stopped.

Onboarding: domain (the NetBox tenant and its quotas), identity (the runner's tenant record: realm, OIDC,
default role, concurrency), admin (the first tenant admin, invited), networks (allocated from the pools in
NetBox), projects, users (invited), ready. Offboarding reverses it: clusters (released to the pools; the flow
waits while any is still being released), users (and every token and invitation of the tenant), projects,
networks (returned to the pools), identity, domain (quotas cleared; the NetBox tenant deleted when nothing
refers to it any more, else kept for history).

The flow's record lives in Redis (gpucloud:onboarding:<slug>): the request, and per step its status, whether
it changed anything, its error and times. Invitation codes never go into it: the response that created them
is the only place they are shown. The NetBox tenant's onboarding_state follows the flow: the step running,
failed:<step>, ready or offboarded.
"""

import json
import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from ansible_collections.gpucloud.infra.plugins.module_utils import tenant_network
from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError
from runner_api import clusters, oidc, store, users
from runner_api.errors import ApiError, Conflict, NotFound, ValidationFailed
from runner_api.principal import Role
from runner_api.projects import Projects, excess
from runner_api.tenants import Realm

log = logging.getLogger(__name__)
TENANTS = "tenancy/tenants"
DEFAULT_POOL = "tenant-fabric"
LOCK_SECONDS = 900  # a flow that died holding the lock frees it after this
QUOTA_FIELDS = {"gpus": "quota_gpus", "gpus_by_model": "quota_gpus_by_model", "cpus": "quota_cpus",
                "memory_gb": "quota_memory_gb", "storage_tb": "quota_storage_tb",
                "alert_thresholds": "quota_alert_thresholds"}
READY = "ready"
OFFBOARDED = "offboarded"


class Step(StrEnum):
    DOMAIN = "domain"
    IDENTITY = "identity"
    ADMIN = "admin"
    NETWORKS = "networks"
    PROJECTS = "projects"
    USERS = "users"
    READY = "ready"
    CLUSTERS = "clusters"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"  # the request asks nothing of this step
    WAITING = "waiting"  # started, not finished yet: call again
    FAILED = "failed"


class Flow(StrEnum):
    ONBOARDING = "onboarding"
    OFFBOARDING = "offboarding"


class FlowStatus(StrEnum):
    RUNNING = "running"
    READY = "ready"
    WAITING = "waiting"
    FAILED = "failed"
    OFFBOARDED = "offboarded"


ONBOARDING_STEPS = (Step.DOMAIN, Step.IDENTITY, Step.ADMIN, Step.NETWORKS, Step.PROJECTS, Step.USERS, Step.READY)
OFFBOARDING_STEPS = (Step.CLUSTERS, Step.USERS, Step.PROJECTS, Step.NETWORKS, Step.IDENTITY, Step.DOMAIN)


@dataclass
class Outcome:
    changed: bool
    detail: dict | None = None
    status: StepStatus = StepStatus.DONE
    message: str | None = None


# -- the record ------------------------------------------------------------------------------------

def load(redis, slug: str) -> dict | None:
    raw = redis.get(store.onboarding_key(slug))
    return json.loads(raw) if raw else None


def save(redis, record: dict) -> None:
    record["updated_at"] = time.time()
    record["changed"] = any(s["changed"] for s in record["steps"])  # by the call that wrote it last
    redis.set(store.onboarding_key(record["tenant"]), json.dumps(record))


def new_record(slug: str, flow: Flow, request: dict, by: str, steps) -> dict:
    return {"tenant": slug, "flow": str(flow), "status": str(FlowStatus.RUNNING), "request": request,
            "started_by": by, "started_at": time.time(), "updated_at": time.time(),
            "steps": [{"name": str(s), "status": str(StepStatus.PENDING), "changed": False, "detail": None,
                       "message": None, "error": None, "errors": [], "started_at": None, "finished_at": None}
                      for s in steps]}


def step_of(record: dict | None, step: Step) -> dict | None:
    return next((s for s in (record or {}).get("steps", []) if s["name"] == step), None)


# -- the request -----------------------------------------------------------------------------------

def validate(request: dict, allow_http_loopback: bool) -> list[dict]:
    """What the schema cannot say, every problem at once."""
    errors = []
    identity = request.get("identity") or {}
    if identity.get("realm") == Realm.OIDC:
        if not identity.get("oidc"):
            errors.append({"field": "identity.oidc", "message": "realm oidc needs the tenant's OIDC registration"})
        else:
            errors += [e | {"field": f"identity.oidc.{e['field']}"}
                       for e in oidc.validate_config(identity["oidc"], allow_http_loopback)]
    elif identity.get("oidc"):
        errors.append({"field": "identity.oidc", "message": "only realm oidc takes an OIDC registration"})
    limits = {k: float(v) for k, v in (request.get("quota") or {}).items() if k in ("gpus", "cpus", "memory_gb",
                                                                                      "storage_tb")}
    if (request.get("quota") or {}).get("gpus_by_model"):
        limits["gpus_by_model"] = request["quota"]["gpus_by_model"]
    for name, spec in sorted((request.get("projects") or {}).items()):
        errors += excess(name, spec.get("quota") or {}, limits, f"projects.{name}")
    networks = request.get("networks")
    if networks:
        problems = tenant_network.validate({"tenant": request["slug"], "pool": networks.get("pool", DEFAULT_POOL),
                                            "vlans": networks.get("vlans", 1),
                                            "prefix_length": networks.get("prefix_length", 24)})
        errors += [{"field": f"networks.{p.split(':', 1)[0]}", "message": p.split(": ", 1)[-1]} for p in problems]
    seen = set()
    listed = [("admin.email", request["admin"]["email"])]
    listed += [(f"users[{i}].email", user["email"]) for i, user in enumerate(request.get("users") or [])]
    for field, email in listed:
        email = users.normalise(email)
        if not users.EMAIL.match(email):
            errors.append({"field": field, "message": f"{email!r} is not an email address"})
        elif email in seen:
            errors.append({"field": field, "message": f"{email} is listed twice (the admin counts too)"})
        seen.add(email)
    return errors


# -- running a flow --------------------------------------------------------------------------------

class Run:
    """One call's pass over a flow's steps."""

    def __init__(self, rt, record: dict, by: str):
        self.rt = rt
        self.record = record
        self.slug = record["tenant"]
        self.request = record["request"]
        self.by = by
        self.nb = rt.inventory.client()
        self.users = users.of(rt)
        self.projects = Projects(self.nb, rt.store.redis)
        self.invitations: list[dict] = []  # the codes made in this call: for its response only
        found = self.nb.list(TENANTS, slug=self.slug)
        self.tenant_id = found[0]["id"] if found else None
        self.netbox_state = (found[0].get("custom_fields") or {}).get("onboarding_state") if found else None

    def mark(self, state: str) -> None:
        """The NetBox tenant's onboarding_state (bookkeeping: never counted as a change)."""
        if self.tenant_id is None or self.netbox_state == state:
            return
        self.nb.update(TENANTS, [{"id": self.tenant_id, "custom_fields": {"onboarding_state": state}}])
        self.netbox_state = state

    def run(self, functions: dict) -> dict:
        redis = self.rt.store.redis
        # Re-running an onboarded tenant keeps its state "ready" unless a step fails or changes it.
        quiet = self.record["flow"] == Flow.ONBOARDING and self.netbox_state == READY
        for entry in self.record["steps"]:
            step = Step(entry["name"])
            entry.update(status=str(StepStatus.RUNNING), started_at=time.time())
            save(redis, self.record)
            try:
                if not quiet and step is not Step.READY:  # ready is the step's own mark
                    self.mark(str(step))
                outcome = functions[step](self)
            except Exception as exc:  # the step's failure is the flow's answer; see _failure for what is kept
                self._fail(entry, step, exc)
                return self.record
            entry.update(status=str(outcome.status), changed=outcome.changed, detail=outcome.detail,
                         message=outcome.message, finished_at=time.time())
            if outcome.status is StepStatus.WAITING:
                self.record["status"] = str(FlowStatus.WAITING)
                save(redis, self.record)
                return self.record
        self.record["status"] = str(FlowStatus.READY if self.record["flow"] == Flow.ONBOARDING
                                    else FlowStatus.OFFBOARDED)
        save(redis, self.record)
        return self.record

    def _fail(self, entry: dict, step: Step, exc: Exception) -> None:
        error, errors = _failure(exc)
        entry.update(status=str(StepStatus.FAILED), error=error, errors=errors, finished_at=time.time())
        self.record["status"] = str(FlowStatus.FAILED)
        try:
            self.mark(f"failed:{step}")
        except NetBoxError as why:
            log.warning("could not mark tenant %s failed in NetBox: %s", self.slug, why)
        save(self.rt.store.redis, self.record)


def _failure(exc: Exception) -> tuple[str, list[dict]]:
    """A step's error for the record: our own errors and NetBox's as they are, anything else only in the log
    (an unexpected exception's text is not checked for what it may carry)."""
    if isinstance(exc, ApiError):
        return exc.detail, exc.errors
    if isinstance(exc, tenant_network.TenantNetworkError):
        return str(exc), [{"field": "networks", "message": e} for e in exc.errors]
    if isinstance(exc, NetBoxError):
        return f"NetBox: {exc}", []
    log.exception("onboarding step failed unexpectedly")
    return f"unexpected error ({type(exc).__name__}); the API log has the details", []


def _lock(rt, slug: str):
    lock = rt.store.redis.lock(store.tenant_lock(slug, "onboarding"), timeout=LOCK_SECONDS, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        raise Conflict(f"an onboarding or offboarding of tenant {slug} is running; "
                       f"GET /v1/onboardings/{slug} shows its steps")
    return lock


def onboard(rt, request: dict, by: str) -> tuple[dict, list[dict], bool]:
    """(record, invitations made, whether this started a new onboarding)."""
    slug = request["slug"]
    lock = _lock(rt, slug)
    try:
        previous = load(rt.store.redis, slug)
        if previous and previous["flow"] == Flow.OFFBOARDING and previous["status"] != FlowStatus.OFFBOARDED:
            raise Conflict(f"tenant {slug} is being offboarded; finish that first")
        created = previous is None or previous["flow"] == Flow.OFFBOARDING
        record = new_record(slug, Flow.ONBOARDING, request, by, ONBOARDING_STEPS)
        if not created:
            record["started_at"], record["started_by"] = previous["started_at"], previous["started_by"]
        run = Run(rt, record, by)
        run.run(ONBOARD)
        return run.record, run.invitations, created
    finally:
        lock.release()


def offboard(rt, slug: str, by: str) -> dict:
    lock = _lock(rt, slug)
    try:
        previous = load(rt.store.redis, slug)
        if previous and previous["flow"] == Flow.OFFBOARDING and previous["status"] == FlowStatus.OFFBOARDED:
            return previous | {"changed": False}  # nothing left to do
        run_before = previous and previous["flow"] == Flow.OFFBOARDING
        if not previous and rt.tenants.get(slug) is None \
                and not rt.inventory.client().list(TENANTS, slug=slug):
            raise NotFound(f"no tenant {slug}")
        clusters = step_of(previous, Step.CLUSTERS) if run_before else None
        # Refused up front while jobs are queued or running: their queue would be orphaned, and their
        # nodes released under them. Once the clusters' release has started, its own jobs may be queued.
        if not clusters or clusters["status"] not in (StepStatus.WAITING, StepStatus.DONE):
            _refuse_while_busy(rt, slug)
        record = new_record(slug, Flow.OFFBOARDING, (previous or {}).get("request") or {"slug": slug}, by,
                            OFFBOARDING_STEPS)
        return Run(rt, record, by).run(OFFBOARD)
    finally:
        lock.release()


def pending_jobs(rt, slug: str) -> int:
    redis = rt.store.redis
    return redis.llen(f"rq:queue:{store.queue_name(slug)}") + redis.scard(store.running(slug))


def _refuse_while_busy(rt, slug: str) -> None:
    pending = pending_jobs(rt, slug)
    if pending:
        raise Conflict(f"tenant {slug} has {pending} queued or running job(s); cancel them or let them finish, "
                       "then offboard again")


# -- onboarding steps ------------------------------------------------------------------------------

def _same(have, want) -> bool:
    if isinstance(want, (int, float)) and not isinstance(want, bool) and have is not None:
        try:
            return float(have) == float(want)
        except (TypeError, ValueError):
            return False
    return have == want


def _domain(run: Run) -> Outcome:
    request = run.request
    fields = {QUOTA_FIELDS[k]: v for k, v in (request.get("quota") or {}).items()}
    want = {k: request[k] for k in ("name", "description") if k in request}
    found = run.nb.list(TENANTS, slug=run.slug)
    if not found:
        body = {"slug": run.slug, "name": request.get("name") or run.slug, "description": want.get("description", ""),
                "custom_fields": fields | {"onboarding_state": str(Step.DOMAIN)}}
        tenant = run.nb.create(TENANTS, [body])[0]
        run.tenant_id, run.netbox_state = tenant["id"], str(Step.DOMAIN)
        return Outcome(True, {"netbox_id": tenant["id"], "created": True})
    tenant = found[0]
    have = tenant.get("custom_fields") or {}
    change = {k: v for k, v in want.items() if tenant.get(k) != v}
    cf = {k: v for k, v in fields.items() if not _same(have.get(k), v)}
    if cf:
        change["custom_fields"] = cf
    if change:
        run.nb.update(TENANTS, [{"id": tenant["id"], **change}])
    return Outcome(bool(change), {"netbox_id": tenant["id"], "created": False,
                                  "updated": sorted([k for k in change if k != "custom_fields"] + list(cf))})


def _identity(run: Run) -> Outcome:
    rt, request = run.rt, run.request
    identity = request.get("identity") or {}
    realm = Realm(identity.get("realm", Realm.TOKEN))
    default_role = identity.get("default_role", str(Role.TENANT_VIEWER))
    tenant = rt.tenants.get(run.slug)
    changed = []
    if tenant is None:
        tenant = rt.tenants.create(run.slug, request.get("concurrency", rt.settings.default_concurrency))
        changed.append("created")
    elif "concurrency" in request and tenant.concurrency != request["concurrency"]:
        rt.tenants.update(run.slug, request["concurrency"])
        changed.append("concurrency")
    if (tenant.realm, tenant.default_role) != (realm, default_role):
        rt.tenants.set_realm(run.slug, realm, default_role)
        changed.append("realm")
    config = identity.get("oidc") if realm is Realm.OIDC else None
    if config != tenant.oidc:
        if config and not rt.tenants.claim_issuer(config["issuer"], run.slug):
            raise ValidationFailed([{"field": "identity.oidc.issuer", "message": "already registered by another "
                                                                                 "tenant"}])
        rt.tenants.set_oidc(run.slug, config)
        changed.append("oidc")
    return Outcome(bool(changed), {"realm": str(realm), "default_role": default_role, "updated": changed})


def _invite(run: Run, email: str, role: Role, projects) -> bool:
    changed, code = run.users.ensure(run.slug, email, role, projects, run.by)
    if code:
        user = run.users.get(run.slug, email)
        run.invitations.append({"email": user.email, "role": user.role, "code": code,
                                "expires_at": user.expires_at})
    return changed


def _admin(run: Run) -> Outcome:
    email = users.normalise(run.request["admin"]["email"])
    invited = len(run.invitations)
    changed = _invite(run, email, Role.TENANT_ADMIN, None)
    return Outcome(changed, {"email": email, "invited": len(run.invitations) > invited})


def _networks(run: Run) -> Outcome:
    networks = run.request.get("networks")
    if not networks:
        return Outcome(False, status=StepStatus.SKIPPED, message="the request names no networks")
    pool = networks.get("pool", DEFAULT_POOL)
    result = tenant_network.present(run.nb, run.slug, pool, networks.get("vlans", 1),
                                    networks.get("prefix_length", 24))
    alloc = result["allocation"]
    return Outcome(result["changed"], {
        "pool": pool, "site": networks.get("site"), "vrf": alloc["vrf"], "l3vni": alloc["l3vni"],
        "ib_pkey": alloc["ib_pkey"],
        "vlans": [{k: v.get(k) for k in ("name", "vid", "l2vni", "prefix")} for v in alloc["vlans"]]})


def _projects(run: Run) -> Outcome:
    wanted = run.request.get("projects") or {}
    if not wanted:
        return Outcome(False, status=StepStatus.SKIPPED, message="the request names no projects")
    return Outcome(run.projects.ensure(run.slug, wanted), {"projects": sorted(wanted)})


def _users(run: Run) -> Outcome:
    listed = run.request.get("users") or []
    if not listed:
        return Outcome(False, status=StepStatus.SKIPPED, message="the request names no users")
    _, known = run.projects.read(run.slug)
    errors = [{"field": f"users[{i}].projects", "message": f"no project {p} in tenant {run.slug}"}
              for i, user in enumerate(listed) for p in user.get("projects") or [] if p not in known]
    if errors:
        raise ValidationFailed(errors)
    default = run.rt.tenants.get(run.slug).default_role
    changed = [user["email"] for user in listed
               if _invite(run, user["email"], Role(user.get("role", default)), user.get("projects"))]
    return Outcome(bool(changed), {"users": len(listed), "changed": changed})


def _ready(run: Run) -> Outcome:
    changed = run.netbox_state != READY
    run.mark(READY)
    return Outcome(changed)


ONBOARD = {Step.DOMAIN: _domain, Step.IDENTITY: _identity, Step.ADMIN: _admin, Step.NETWORKS: _networks,
           Step.PROJECTS: _projects, Step.USERS: _users, Step.READY: _ready}


# -- offboarding steps -----------------------------------------------------------------------------

def _release_clusters(run: Run) -> Outcome:
    run.rt.tenants.mark_offboarding(run.slug)  # nothing new starts while everything is taken back
    left = clusters.release_all(run.rt, run.slug)
    if left:
        return Outcome(True, {"clusters": left}, StepStatus.WAITING,
                       f"waiting for {left} cluster(s) to be released")
    return Outcome(False, {"clusters": 0})


def _remove_users(run: Run) -> Outcome:
    removed = run.users.remove_all(run.slug)
    revoked = run.rt.tokens.revoke_all(run.slug)
    return Outcome(bool(removed or revoked), {"users": removed, "tokens": len(revoked)})


def _remove_projects(run: Run) -> Outcome:
    return Outcome(run.projects.clear(run.slug))


def _release_networks(run: Run) -> Outcome:
    pool = (run.request.get("networks") or {}).get("pool", DEFAULT_POOL)
    result = tenant_network.absent(run.nb, run.slug, pool)
    return Outcome(result["changed"], {"pool": pool, "released": result["released"]})


def _remove_identity(run: Run) -> Outcome:
    _refuse_while_busy(run.rt, run.slug)
    if run.rt.tenants.get(run.slug) is None:
        return Outcome(False)
    run.rt.tenants.delete(run.slug)
    clusters.forget_tenant(run.rt, run.slug)
    return Outcome(True)


def references(nb, tenant: dict) -> dict:
    """What still refers to the tenant in NetBox: its object counts, and journal entries on it."""
    counts = {k.removesuffix("_count"): v for k, v in tenant.items() if k.endswith("_count") and v}
    journal = nb.get("extras/journal-entries", assigned_object_type="tenancy.tenant",
                     assigned_object_id=tenant["id"], limit=1)["count"]
    return counts | ({"journal_entries": journal} if journal else {})


def _remove_domain(run: Run) -> Outcome:
    found = run.nb.list(TENANTS, slug=run.slug)
    if not found:
        return Outcome(False, {"deleted": False})
    tenant = found[0]
    have = tenant.get("custom_fields") or {}
    quotas = {cf: None for cf in QUOTA_FIELDS.values() if have.get(cf) not in (None, "", [], {})}
    run.nb.update(TENANTS, [{"id": tenant["id"], "custom_fields": quotas | {"onboarding_state": OFFBOARDED}}])
    run.netbox_state = OFFBOARDED
    left = references(run.nb, run.nb.get(f"{TENANTS}/{tenant['id']}"))
    if left:
        return Outcome(bool(quotas), {"deleted": False, "kept_for": left})
    try:
        run.nb.request("DELETE", f"{TENANTS}/{tenant['id']}")
    except NetBoxError as exc:
        if exc.status != 409:  # 409: something NetBox protects refers to it after all: kept
            raise
        return Outcome(bool(quotas), {"deleted": False, "kept_for": {"protected": str(exc)}})
    run.tenant_id = None
    return Outcome(True, {"deleted": True})


OFFBOARD = {Step.CLUSTERS: _release_clusters, Step.USERS: _remove_users, Step.PROJECTS: _remove_projects,
            Step.NETWORKS: _release_networks, Step.IDENTITY: _remove_identity, Step.DOMAIN: _remove_domain}
