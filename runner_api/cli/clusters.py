"""`gpucloud clusters` (ask for GPUs, watch the stages, delete) and `gpucloud quota|alerts|cost`."""

import time

import click

from runner_api.cli.client import CliError, part
from runner_api.cli.config import connect
from runner_api.cli.output import Painted, exit_with, print_json, table, when

FINAL = ("ready", "failed", "deleted")


def _request(name, kind, gpus, nodes, vendor, model, min_memory, interconnect, ib, image, project, tenant) -> dict:
    body = {"name": name, "kind": kind, "interconnect": interconnect, "ib": ib}
    optional = (("gpus", gpus), ("nodes", nodes), ("vendor", vendor), ("model", model), ("image", image),
                ("min_gpu_memory_gb", min_memory), ("project", project), ("tenant", tenant))
    return body | {k: v for k, v in optional if v is not None}


def _placement_lines(placement: dict, estimate: dict | None) -> list[str]:
    lines = [f"placement: {len(placement['nodes'])} x {placement['model']} ({placement['gpus']} GPUs) in "
             f"{placement['level']} domain {placement['domain']}"]
    lines += [f"  {n['name']}  nvlink {n['nvlink_domain']}  leaf {n['leaf']}" for n in placement["nodes"]]
    if estimate:
        projection = ", ".join(f"{k} {v:,.2f}" for k, v in estimate["projection"].items())
        lines.append(f"cost: {estimate['hourly']:,.2f} {estimate['currency']}/hour ({projection})")
    return lines


@click.group()
def clusters():
    """Ask for a Slurm or Kubernetes cluster by GPUs and topology; watch it provision; delete it."""


@clusters.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["slurm", "k8s"]), required=True)
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs wanted (whole nodes are allocated).")
@click.option("--nodes", type=click.IntRange(min=1), help="Nodes wanted (instead of --gpus).")
@click.option("--vendor", help="GPU vendor, e.g. NVIDIA or AMD.")
@click.option("--model", help="GPU model, e.g. H100-SXM5-80GB.")
@click.option("--min-gpu-memory", "min_memory", type=click.IntRange(min=0), help="Least GB per GPU.")
@click.option("--interconnect", type=click.Choice(["nvlink", "leaf", "pod", "any"]), default="any",
              show_default=True, help="Every node inside one NVLink domain, leaf, pod, or just one site.")
@click.option("--ib/--no-ib", default=False, help="Every node needs InfiniBand.")
@click.option("--image", help="Golden image (NetBox platform slug) to deploy.")
@click.option("--project", help="Project the cluster counts against.")
@click.option("--tenant", help="Platform admins: the tenant to create it for.")
@click.option("--dry-run", is_flag=True, help="Show the placement and its cost; reserve nothing.")
@click.option("--wait/--no-wait", default=False, help="Follow the stages until the cluster is ready or failed.")
@click.option("--json", "as_json", is_flag=True)
def clusters_create(name, kind, gpus, nodes, vendor, model, min_memory, interconnect, ib, image, project, tenant,
                    dry_run, wait, as_json):
    """Create cluster NAME (or estimate it with --dry-run)."""
    body = _request(name, kind, gpus, nodes, vendor, model, min_memory, interconnect, ib, image, project, tenant)
    api = connect()
    answer = api.post("/v1/clusters", body | {"dry_run": dry_run})
    if as_json and not wait:
        return print_json(answer)
    for line in _placement_lines(answer["placement"], answer.get("estimate")):
        click.echo(line)
    if dry_run:
        return None
    click.echo(f"cluster {answer['id']} {answer['status']}: stages " + ", ".join(s["stage"] for s in answer["stages"]))
    if wait:
        final = follow(api, answer["id"])
        if as_json:
            print_json(final)
        exit_with(0 if final["status"] == "ready" else 1)
    return None


def follow(api, cluster_id: str, poll: float = 2.0) -> dict:
    """Print each stage as it changes, until the cluster settles."""
    seen: dict[str, str] = {}
    while True:
        cluster = api.get(f"/v1/clusters/{part(cluster_id)}")
        for stage in cluster["stages"]:
            if seen.get(stage["stage"]) != stage["status"]:
                seen[stage["stage"]] = stage["status"]
                click.echo(f"  stage {stage['stage']:<8} {stage['status']:<10} job {stage.get('job') or '-'}")
        if cluster["status"] in FINAL:
            click.echo(f"cluster {cluster['name']} {cluster['status']}"
                       + (f": {cluster['reason']}" if cluster.get("reason") else ""))
            return cluster
        time.sleep(poll)


@clusters.command("list")
@click.option("--project")
@click.option("--tenant", help="Platform admins: one tenant's clusters.")
@click.option("--json", "as_json", is_flag=True)
def clusters_list(project, tenant, as_json):
    """Clusters you can see, newest first."""
    page = connect().get("/v1/clusters", project=project, tenant=tenant)
    if as_json:
        return print_json(page)
    rows = [[c["id"], c["tenant"], c["name"], c["kind"], Painted(c["status"]), c.get("project") or "-",
             len(c["nodes"]), c["gpus"], c["placement"]["domain"], when(c["created_at"])] for c in page["items"]]
    click.echo(table(["ID", "TENANT", "NAME", "KIND", "STATUS", "PROJECT", "NODES", "GPUS", "DOMAIN", "CREATED"],
                     rows, right=(6, 7)) if rows else "no clusters")
    return None


@clusters.command("show")
@click.argument("cluster_id")
@click.option("--json", "as_json", is_flag=True)
def clusters_show(cluster_id, as_json):
    """One cluster: placement, cost and each stage's job."""
    cluster = connect().get(f"/v1/clusters/{part(cluster_id)}")
    if as_json:
        return print_json(cluster)
    click.echo(f"cluster {cluster['name']} ({cluster['kind']}) of {cluster['tenant']}: {cluster['status']}"
               + (f" - {cluster['reason']}" if cluster.get("reason") else ""))
    for line in _placement_lines(cluster["placement"], cluster.get("estimate")):
        click.echo(line)
    for stage in cluster["stages"]:
        click.echo(f"  stage {stage['stage']:<8} {stage['status']:<10} job {stage.get('job') or '-'}")
    return None


@clusters.command("delete")
@click.argument("cluster_id")
@click.option("--wait/--no-wait", default=False, help="Follow the wipe until the nodes are released.")
def clusters_delete(cluster_id, wait):
    """Wipe the cluster's nodes and release them."""
    api = connect()
    cluster = api.delete(f"/v1/clusters/{part(cluster_id)}")
    click.echo(f"cluster {cluster['name']} {cluster['status']}")
    if wait and cluster["status"] != "deleted":
        final = follow(api, cluster["id"])
        exit_with(0 if final["status"] == "deleted" else 1)


def _tenant(api, tenant: str | None) -> str:
    if tenant:
        return tenant
    me = api.get("/v1/whoami")
    if not me.get("tenant"):
        raise CliError("platform admins name the tenant", hint="add --tenant SLUG")
    return me["tenant"]


@click.command("quota")
@click.option("--tenant")
@click.option("--json", "as_json", is_flag=True)
def quota(tenant, as_json):
    """Quotas, usage and what is left, for the tenant and each project."""
    api = connect()
    report = api.get(f"/v1/tenants/{part(_tenant(api, tenant))}/quota")
    if as_json:
        return print_json(report)
    rows = [["tenant", q["resource"], q["used"], q["limit"], q["left"], f"{q['percent']}%"] for q in report["quota"]]
    for project, entry in report["projects"].items():
        rows += [[project, q["resource"], q["used"], q["limit"], q["left"], f"{q['percent']}%"]
                 for q in entry["quota"]]
    click.echo(table(["SCOPE", "RESOURCE", "USED", "LIMIT", "LEFT", "USE"], rows, right=(2, 3, 4, 5))
               if rows else "no quotas set")
    return None


@click.command("alerts")
@click.option("--tenant")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def alerts(tenant, limit):
    """Quota alerts, newest first."""
    api = connect()
    items = api.get(f"/v1/tenants/{part(_tenant(api, tenant))}/alerts", limit=limit)["items"]
    rows = [[when(a["at"]), Painted(a["level"]), a["kind"], a["message"]] for a in items]
    click.echo(table(["WHEN", "LEVEL", "KIND", "MESSAGE"], rows) if rows else "no alerts")


@click.command("cost")
@click.option("--tenant")
@click.option("--json", "as_json", is_flag=True)
def cost(tenant, as_json):
    """What the tenant's nodes cost per hour now, by project."""
    api = connect()
    report = api.get(f"/v1/tenants/{part(_tenant(api, tenant))}/cost")
    if as_json:
        return print_json(report)
    click.echo(f"{report['hourly']:,.2f} {report['currency']}/hour; clusters accrued "
               f"{report['accrued_by_clusters']:,.2f} {report['currency']}")
    for project, value in report["hourly_by_project"].items():
        click.echo(f"  {project}: {value:,.2f}/hour")
    return None
