"""The lab's emulated BMCs: one sushy-tools Redfish service per server of the 32-node fleet, on the
server's BMC address, over TLS signed by the lab CA, with basic auth and BIOS resources."""

import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from lab import bmc_emulator

pytestmark = pytest.mark.netbox

MB = 1024  # smaps values are in KiB


@pytest.fixture(scope="module")
def bmcs(settings, lab_env, fleet):
    wanted = bmc_emulator.bmcs_for(settings, fleet)
    bmc_emulator.ensure_running(settings, wanted)  # the fleet fixture started them; this only checks
    return wanted


@pytest.fixture(scope="module")
def client(lab_env):
    """What a BIOS-tuning client needs: the password and the CA from the lab's environment."""
    session = requests.Session()
    session.auth = (bmc_emulator.USERNAME, lab_env["GPUCLOUD_LAB_BMC_PASSWORD"])
    session.verify = lab_env["GPUCLOUD_LAB_BMC_CA"]
    session.trust_env = False  # an environment's REQUESTS_CA_BUNDLE must not replace the lab CA
    yield session
    session.close()


def url(bmc: dict, path: str = "") -> str:
    return f"https://{bmc['address']}:{bmc_emulator.port()}{path}"


def each(bmcs, fn):
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(fn, bmcs))


def system_path(bmc: dict) -> str:
    return f"/redfish/v1/Systems/{bmc_emulator.system_uuid(bmc['name'])}"


def test_every_bmc_of_the_fleet_answers_redfish_over_tls_with_basic_auth(bmcs, fleet, client):
    assert len(bmcs) == len(fleet.servers) == 32
    assert {b["address"] for b in bmcs} == {srv.bmc_ip.split("/")[0] for srv in fleet.servers}

    def systems(bmc):
        resp = client.get(url(bmc, "/redfish/v1/Systems"), timeout=10)
        return resp.status_code, resp.json()

    for status, body in each(bmcs, systems):
        assert status == 200, body
        assert body["Members@odata.count"] == 1


def test_each_bmc_shows_only_its_own_system(bmcs, client):
    def check(bmc):
        members = client.get(url(bmc, "/redfish/v1/Systems"), timeout=10).json()["Members"]
        system = client.get(url(bmc, system_path(bmc)), timeout=10).json()
        by_name = client.get(url(bmc, f"/redfish/v1/Systems/{bmc['name']}"), timeout=10, allow_redirects=False)
        return members, system, by_name

    for bmc, (members, system, by_name) in zip(bmcs, each(bmcs, check), strict=True):
        assert [m["@odata.id"] for m in members] == [system_path(bmc)]
        assert system["Name"] == bmc["name"] and system["UUID"] == bmc_emulator.system_uuid(bmc["name"])
        assert by_name.status_code == 307 and by_name.headers["Location"].endswith(system_path(bmc))
    # Another server's system is not behind this BMC.
    assert client.get(url(bmcs[0], system_path(bmcs[1])), timeout=10).status_code == 404


def test_wrong_or_missing_credentials_get_401(bmcs, client):
    target = url(bmcs[0], "/redfish/v1/Systems")
    wrong = requests.get(target, auth=(bmc_emulator.USERNAME, "not-the-password"), verify=client.verify, timeout=10)
    assert wrong.status_code == 401
    assert requests.get(target, verify=client.verify, timeout=10).status_code == 401
    assert requests.get(target, auth=("root", client.auth[1]), verify=client.verify, timeout=10).status_code == 401


def test_the_certificate_is_the_bmcs_own_and_signed_by_the_lab_ca(bmcs, lab_env):
    bmc = bmcs[5]
    trusted = ssl.create_default_context(cafile=lab_env["GPUCLOUD_LAB_BMC_CA"])
    with socket.create_connection((bmc["address"], bmc_emulator.port()), timeout=10) as raw, \
            trusted.wrap_socket(raw, server_hostname=bmc["address"]) as tls:
        cert = tls.getpeercert()
    assert ("IP Address", bmc["address"]) in cert["subjectAltName"]
    assert ("DNS", bmc["name"]) in cert["subjectAltName"]
    untrusted = ssl.create_default_context()  # the system's CAs do not know the lab CA
    with socket.create_connection((bmc["address"], bmc_emulator.port()), timeout=10) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        untrusted.wrap_socket(raw, server_hostname=bmc["address"])


def test_bios_has_attributes_and_a_settings_object(bmcs, client):
    bmc = bmcs[0]
    system = client.get(url(bmc, system_path(bmc)), timeout=10).json()
    assert system["Bios"]["@odata.id"] == f"{system_path(bmc)}/BIOS"
    bios = client.get(url(bmc, system["Bios"]["@odata.id"]), timeout=10).json()
    assert bios["Attributes"]["ProcTurboMode"] in ("Enabled", "Disabled")
    assert bios["Attributes"]["NumCores"].isdigit()  # every value is a string
    assert bios["@Redfish.Settings"]["SettingsObject"]["@odata.id"] == f"{system_path(bmc)}/BIOS/Settings"


def test_a_bios_patch_applies_at_once_and_persists(bmcs, client):
    bmc = bmcs[3]
    bios_url = url(bmc, f"{system_path(bmc)}/BIOS")
    before = client.get(bios_url, timeout=10).json()["Attributes"]["ProcTurboMode"]
    after = "Disabled" if before == "Enabled" else "Enabled"
    try:
        resp = client.patch(f"{bios_url}/Settings", json={"Attributes": {"ProcTurboMode": after}}, timeout=10)
        assert resp.status_code == 204 and not resp.content
        assert client.get(bios_url, timeout=10).json()["Attributes"]["ProcTurboMode"] == after
        # Fresh connections, later requests: the emulator's kept-open libvirt connection holds the state.
        for _ in range(3):
            fresh = requests.get(bios_url, auth=client.auth, verify=client.verify, timeout=10)
            assert fresh.json()["Attributes"]["ProcTurboMode"] == after
        # Only this BMC changed.
        other = url(bmcs[4], f"{system_path(bmcs[4])}/BIOS")
        assert client.get(other, timeout=10).json()["Attributes"]["ProcTurboMode"] == before
    finally:
        client.patch(f"{bios_url}/Settings", json={"Attributes": {"ProcTurboMode": before}}, timeout=10)


def test_memory_per_emulator_process(settings, bmcs):
    pids = bmc_emulator.processes(settings)
    assert len(pids) == len(bmcs)
    usage = [bmc_emulator.memory(pid) for pid in pids]
    rss = max(u["Rss"] for u in usage) / MB
    pss = max(u["Pss"] for u in usage) / MB
    private = max(u["Private_Clean"] + u["Private_Dirty"] for u in usage) / MB
    print(f"\n{len(pids)} BMC emulators: RSS <= {rss:.1f} MB (most shared copy-on-write with the launcher), "
          f"PSS <= {pss:.1f} MB, private <= {private:.1f} MB per process")
    # RSS counts every page shared with the parent (~35 MB of interpreter, Flask, libvirt); what a BMC
    # costs the machine is its PSS / private memory.
    assert pss < 40 and private < 40
    assert rss < 64

