"""The lab nodes the scheduler tests build clusters of: both sites and every GPU vendor of the demo fleet.

H100 servers on leaf dc1-r01 (project train), GB200 trays sharing an NVL72 domain on leaf dc1-r02 (project infer),
an MI300X on dc1-r03 and a Gaudi3 on dc2-r03; ADDED is the H100 a test adds later.
"""

H100 = ["gpu-dc1-r01-k01-n01", "gpu-dc1-r01-k01-n02"]
ADDED = "gpu-dc1-r01-k01-n03"
GB200 = ["gpu-dc1-r02-k01-n01", "gpu-dc1-r02-k01-n02", "gpu-dc1-r02-k01-n03"]
MI300X = "gpu-dc1-r03-k01-n01"
GAUDI = "gpu-dc2-r03-k01-n01"
NODES = [*H100, *GB200, MI300X, GAUDI]
PROJECTS = {**dict.fromkeys([*H100, ADDED], "train"), **dict.fromkeys(GB200, "infer")}


def book_projects(nb, names) -> None:
    """Set each node's project in NetBox (the tests restore the fleet afterwards)."""
    ids = {d["name"]: d["id"] for d in nb.list("dcim/devices", name=list(names), fields="id,name")}
    nb.update("dcim/devices", [{"id": ids[n], "custom_fields": {"project": PROJECTS.get(n)}} for n in names])
