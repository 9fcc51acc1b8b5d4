"""Emulated BMCs for the lab: one Redfish service per server, on the server's BMC address.

What runs: sushy-tools' Redfish emulator (`sushy_tools.emulator.main`, PyPI `sushy-tools`) with
its libvirt driver on libvirt's in-process test hypervisor (`test:///default`), installed in its
own virtualenv (`~/.cache/gpucloud/venvs/sushy-<version>`, built once per machine; libvirt-python
compiles against Debian's `libvirt-dev`). `lab/bmc_launcher.py` imports it all once and forks one
process per BMC, each serving `https://<bmc address>:443/redfish/v1/` (werkzeug, threaded) with
HTTP basic auth and exactly one system: the server's own, a libvirt domain named after the server
with the UUID `uuid5(BMC_UUID_NAMESPACE, name)`. The launcher's pid is `.state/run/bmc-emulators.pid`,
its log `.state/log/bmc-emulators.log`.

TLS: one lab CA (`ca_file(s)`, `.state/bmc/ca.pem`, exported as GPUCLOUD_LAB_BMC_CA) signs one
certificate per BMC whose SANs are the BMC's IP address and the server's name (EC P-256, like a
real BMC's own certificate). Clients must pass that CA with each request (`verify=ca_file`) or use
a Session with `trust_env = False`: when the environment sets REQUESTS_CA_BUNDLE, requests replaces
a Session's `verify` (False or a path) with it.

Credentials: user `admin`, password generated once per machine in `~/.cache/gpucloud/lab-secrets.json`
(`bmc_password`) and exported as GPUCLOUD_LAB_BMC_PASSWORD, the variable the fleet's NetBox devices
name in `bmc_credential_ref: env:GPUCLOUD_LAB_BMC_PASSWORD`. The emulator's auth file is
htpasswd-style with bcrypt digests only; the lab hashes at cost 4 so each request verifies in
about a millisecond. `/redfish/v1/` itself answers without auth (sushy-tools exempts the root).

Redfish as this emulator serves it (what the BIOS tuning code talks to):
- `/redfish/v1/Systems` lists one member, `/redfish/v1/Systems/<uuid>` (`BiosVersion` "1.0.0",
  `PowerState` "On"); a request by domain name (`/redfish/v1/Systems/<server name>`) answers 307 to
  the UUID path. Managers and Chassis likewise show only this server.
- `/redfish/v1/Systems/<uuid>/BIOS` has `Attributes` and `@Redfish.Settings.SettingsObject`
  pointing at `/redfish/v1/Systems/<uuid>/BIOS/Settings`; `Bios.ResetBios` restores the defaults.
- A PATCH `{"Attributes": {...}}` to `.../BIOS/Settings` answers 204 with no body and applies
  immediately: the next GET of `.../BIOS` (and of `.../BIOS/Settings`, which is a copy, not a
  pending set) shows it, no reboot needed. A body without an `Attributes` object answers 500.
- The attribute registry (`/redfish/v1/Registries/BiosAttributeRegistry.v1_0_0`, whose location is
  `/redfish/v1/Systems/Bios/BiosRegistry`, Id "BiosAttributeRegistryP89.v1_0_0" as the BIOS's
  `AttributeRegistry` says) is a fixed sample of 10 attributes. Nothing is validated: unknown names
  are added, any value is accepted, and every value is stored and returned as a string (10 -> "10",
  true -> "True"; the registry's Integer and Boolean attributes read back as "10" and "true").
- No ETags are sent and If-Match is ignored. Every response closes the connection (werkzeug's
  server has no keep-alive), so each request pays a TLS handshake.
- State lives in memory: restarting the emulators (or one BMC's process) resets its BIOS.
- SUSHY_EMULATOR_ALLOWED_INSTANCES filters the Systems collection but, in sushy-tools 2.2.0, a
  denied instance answers 500 (its decorator raises through a name that shadows the error module),
  so the lab does not use it: each process's own hypervisor holds only its server, and another
  system's UUID answers 404.

Virtual media (the golden-image deploy): sushy-tools' InsertMedia downloads the image URL into the
emulator's temporary directory, then the libvirt driver uploads it into a storage volume, which
libvirt's test hypervisor cannot do (virStorageVolUpload is not supported: InsertMedia answers 500).
So a BMC may ask for sushy-tools' fake systems driver instead (`"driver": "fake"` in its entry): a
stand-in only for what cannot exist here. Its system keeps power state, boot device and the inserted
media in memory (a per-BMC sqlite file, removed when the BMC starts), takes 1-11 s to apply a reset
(ForceRestart: Off at once, On later), has no BIOS resource and always reports
BootSourceOverrideEnabled "Continuous". `ensure_running(..., artifacts=...)` also serves a static
directory over HTTP as the artifact store the BMCs download from. `vmedia_lab()` starts such a set in
its own state directory (its own CA), next to and independent of the fleet's BMCs.

Memory and time (2 cores): see README.md, "The lab". `make seed NODES=2000` would want thousands
of processes, so at most GPUCLOUD_LAB_BMCS (default 512) BMCs are emulated: the first servers of
the fleet plan.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from lab import netbox_server
from lab.proc import LabError, port_open, read_pid, run, stop_pid
from lab.settings import Settings

SUSHY_TOOLS_VERSION = "2.2.0"
# The whole resolved set, pinned: libvirt-python must match Debian 12's libvirt 9.0 (< 9.1).
REQUIREMENTS = [
    f"sushy-tools=={SUSHY_TOOLS_VERSION}", "libvirt-python==9.0.0", "bcrypt==5.0.0",
    "Flask==3.1.3", "Werkzeug==3.1.9", "Jinja2==3.1.6", "MarkupSafe==3.0.4", "itsdangerous==2.2.0",
    "blinker==1.9.0", "click==8.5.1", "WebOb==1.8.11", "legacy-cgi==2.6.4", "pbr==7.1.3", "tenacity==9.2.1",
    "requests==2.34.2", "urllib3==2.8.0", "idna==3.20", "charset-normalizer==3.5.2", "certifi==2026.10.18",
    "setuptools==84.2.1",
]
USERNAME = "admin"
PASSWORD_ENV = "GPUCLOUD_LAB_BMC_PASSWORD"
CA_ENV = "GPUCLOUD_LAB_BMC_CA"
PORT_ENV = "GPUCLOUD_LAB_BMC_PORT"
LIMIT_ENV = "GPUCLOUD_LAB_BMCS"
DEFAULT_PORT = 443
DEFAULT_LIMIT = 512
LIBVIRT_URI = "test:///default"
LIBVIRT, FAKE = "libvirt", "fake"  # per-BMC systems driver (see "Virtual media" above)
VMEDIA_ADDRESSES = "127.101.0.{}"  # the virtual-media lab's BMCs; its artifact server is .254
BMC_UUID_NAMESPACE = uuid.UUID("5f0c6b1e-8d1a-4f43-9a57-6c1d0b7e2a10")
LAUNCHER = Path(__file__).resolve().parent / "bmc_launcher.py"


# -- configuration -------------------------------------------------------------------------------

def port() -> int:
    return int(os.environ.get(PORT_ENV, DEFAULT_PORT))


def limit() -> int:
    return int(os.environ.get(LIMIT_ENV, DEFAULT_LIMIT))


def venv(s: Settings) -> Path:
    return s.cache / "venvs" / f"sushy-{SUSHY_TOOLS_VERSION}"


def _dir(s: Settings) -> Path:
    return s.state / "bmc"


def _pidfile(s: Settings) -> Path:
    return s.run / "bmc-emulators.pid"


def _digest_file(s: Settings) -> Path:
    return s.run / "bmc-emulators.digest"


def _log(s: Settings) -> Path:
    return s.logs / "bmc-emulators.log"


def _record(s: Settings) -> Path:
    return _dir(s) / "bmcs.json"


def system_uuid(name: str) -> str:
    return str(uuid.uuid5(BMC_UUID_NAMESPACE, name))


def credentials(s: Settings) -> dict[str, str]:
    """The lab BMCs' {username, password}; the password is generated once per machine."""
    values = netbox_server.lab_secrets(s)
    if not values.get("bmc_password"):
        values = {**values, "bmc_password": secrets.token_urlsafe(18)}
        netbox_server._save_secrets(s, values)
    os.environ[PASSWORD_ENV] = values["bmc_password"]
    return {"username": USERNAME, "password": values["bmc_password"]}


def env(s: Settings) -> dict[str, str]:
    """What the lab's environment file exports for BMC clients."""
    values = {PASSWORD_ENV: credentials(s)["password"], CA_ENV: str(ca_file(s))}
    if port() != DEFAULT_PORT:
        values[PORT_ENV] = str(port())
    return values


def bmcs_for(s: Settings, fleet) -> list[dict]:
    """The BMCs of a fleet plan's servers (at most GPUCLOUD_LAB_BMCS), with the lab credentials."""
    cred = credentials(s)
    return [{"name": srv.name, "address": srv.bmc_ip.split("/")[0], **cred} for srv in fleet.servers[:limit()]]


# -- virtualenv ----------------------------------------------------------------------------------

def ensure_venv(s: Settings) -> bool:
    target = venv(s)
    marker = target / ".gpucloud-complete"
    wanted = "\n".join(REQUIREMENTS)
    if marker.exists() and marker.read_text() == wanted:
        return False
    if run(["pkg-config", "--exists", "libvirt"], check=False).returncode != 0:
        raise LabError("libvirt development files not found (libvirt-python builds against them): "
                       "apt-get install libvirt-dev pkg-config gcc, or run bin/setup as root")
    print(f"  installing sushy-tools {SUSHY_TOOLS_VERSION} into {target} (once per machine)")
    target.parent.mkdir(parents=True, exist_ok=True)
    s.logs.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", "--clear", str(target)])
    run([str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *REQUIREMENTS], log=s.logs / "bmc-pip.log")
    run([str(target / "bin" / "python"), "-c", "import libvirt, bcrypt, sushy_tools.emulator.main"])
    marker.write_text(wanted)
    return True


# -- TLS -----------------------------------------------------------------------------------------

def ca_file(s: Settings) -> Path:
    """The lab CA certificate that signs every BMC's certificate; created on first use."""
    path = _dir(s) / "ca.pem"
    if not path.exists():
        _make_ca(s, path)
    return path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _make_ca(s: Settings, path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.rmtree(path.parent / "tls", ignore_errors=True)  # certificates of an older CA
    key = ec.generate_private_key(ec.SECP256R1())
    lab_id = hashlib.sha256(str(s.state).encode()).hexdigest()[:8]  # a CN holds at most 64 characters
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"gpucloud lab BMC CA {lab_id}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(path.parent / "ca-key.pem", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _certs(s: Settings, bmcs: list[dict]) -> dict[str, Path]:
    """One key + certificate file per BMC (SANs: its IP and its server's name), signed by the lab CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_pem = ca_file(s).read_bytes()
    tls = _dir(s) / "tls"
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    wanted = {b["address"]: tls / f"{b['address']}-{b['name']}.pem" for b in bmcs}
    for old in set(tls.glob("*.pem")) - set(wanted.values()):
        old.unlink()
    missing = [b for b in bmcs if not wanted[b["address"]].exists()]
    if missing:
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        ca_key = serialization.load_pem_private_key((_dir(s) / "ca-key.pem").read_bytes(), None)
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        now = datetime.datetime.now(datetime.UTC)
        for b in missing:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, b["name"])]))
                    .issuer_name(ca_cert.subject).public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(days=1))
                    .not_valid_after(now + datetime.timedelta(days=3650))
                    .add_extension(x509.SubjectAlternativeName([
                        x509.IPAddress(ipaddress.ip_address(b["address"])), x509.DNSName(b["name"])]), critical=False)
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                                   critical=False)
                    .sign(ca_key, hashes.SHA256()))
            _write_private(wanted[b["address"]], key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
                + cert.public_bytes(serialization.Encoding.PEM))
    return wanted


# -- the launcher --------------------------------------------------------------------------------

def _config(s: Settings, bmcs: list[dict], artifacts: dict | None = None) -> dict:
    creds: list[tuple[str, str]] = []
    entries = []
    for b in bmcs:
        pair = (b["username"], b["password"])
        if pair not in creds:
            creds.append(pair)
        entry = {"name": b["name"], "address": b["address"], "uuid": system_uuid(b["name"]),
                 "auth": creds.index(pair)}
        if b.get("driver", LIBVIRT) != LIBVIRT:
            entry["driver"] = b["driver"]
        entries.append(entry)
    cfg = {"port": port(), "libvirt_uri": LIBVIRT_URI, "state_dir": str(_dir(s) / "sushy-state"),
           "auth_dir": str(_dir(s) / "auth"), "log_level": "WARNING",
           "credentials": [{"username": u, "password": p} for u, p in creds], "bmcs": entries}
    if artifacts:
        cfg["artifacts"] = {"address": artifacts["address"], "port": int(artifacts["port"]),
                            "root": str(artifacts["root"])}
    return cfg


def _digest(cfg: dict, ca_pem: bytes) -> str:
    public = {**cfg, "credentials": [{"username": c["username"],
                                      "password": hashlib.sha256(c["password"].encode()).hexdigest()}
                                     for c in cfg["credentials"]]}
    digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode())
    digest.update(LAUNCHER.read_bytes())
    digest.update(ca_pem)  # a new lab CA means new certificates: restart
    return digest.hexdigest()[:16]


def running(s: Settings) -> bool:
    return read_pid(_pidfile(s)) is not None


@contextlib.contextmanager
def _locked(s: Settings):
    """One start or stop at a time per state directory (tests in parallel sessions share one)."""
    s.run.mkdir(parents=True, exist_ok=True)
    with (s.run / "bmc-emulators.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_running(s: Settings, bmcs: list[dict], artifacts: dict | None = None) -> bool:
    """Serve exactly these BMCs; False when they already are (a quick check), True when (re)started.

    Each bmc is {name, address, username, password} and optionally driver ("libvirt", the default,
    or "fake" for virtual media). Waits until every one answers /redfish/v1/Systems over TLS
    (verified against the lab CA) with its credentials. artifacts, {address, port, root}, also
    serves the directory root over plain HTTP (the artifact store virtual media downloads from).
    """
    ensure_venv(s)
    for path in (s.run, s.logs, _dir(s)):
        path.mkdir(parents=True, exist_ok=True)
    with _locked(s):
        return _ensure_running(s, bmcs, artifacts)


def _ensure_running(s: Settings, bmcs: list[dict], artifacts: dict | None = None) -> bool:
    cfg = _config(s, bmcs, artifacts)
    digest = _digest(cfg, ca_file(s).read_bytes())
    digest_file = _digest_file(s)
    if (running(s) and digest_file.exists() and digest_file.read_text() == digest
            and all(port_open(cfg["port"], b["address"]) for b in bmcs[:1] + bmcs[-1:])
            and (not artifacts or port_open(int(artifacts["port"]), artifacts["address"]))):
        return False
    _stop(s, quiet=True)
    digest_file.unlink(missing_ok=True)
    _record(s).write_text(json.dumps([{"name": b["name"], "address": b["address"]} for b in bmcs]))
    if not bmcs:
        return False
    unprivileged = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    first_free = int(unprivileged.read_text()) if unprivileged.exists() else 1024
    if os.geteuid() != 0 and cfg["port"] < first_free:
        raise LabError(f"port {cfg['port']} needs root here; run as root or set {PORT_ENV} (e.g. 8443)")
    busy = [b["address"] for b in bmcs if port_open(cfg["port"], b["address"])]
    if busy:
        raise LabError(f"{len(busy)} BMC addresses already have a listener on port {cfg['port']} (first "
                       f"{busy[0]}): another lab's emulators? Stop them or set {PORT_ENV}")
    certs = _certs(s, bmcs)
    for entry in cfg["bmcs"]:
        entry["cert"] = str(certs[entry["address"]])
    started = time.monotonic()
    with _log(s).open("ab") as out:
        proc = subprocess.Popen([str(venv(s) / "bin" / "python"), str(LAUNCHER)], stdin=subprocess.PIPE,
                                stdout=out, stderr=subprocess.STDOUT, cwd=s.state, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "MALLOC_ARENA_MAX": "2"})
    _pidfile(s).write_text(f"{proc.pid}\n")
    proc.stdin.write(json.dumps(cfg).encode())
    proc.stdin.close()
    _wait_ready(s, proc, bmcs, cfg["port"], timeout=60 + 0.5 * len(bmcs))
    if artifacts:
        _wait_listening(s, proc, artifacts["address"], int(artifacts["port"]), timeout=30)
    digest_file.write_text(digest)
    print(f"  {len(bmcs)} BMC emulators answering on port {cfg['port']} in {time.monotonic() - started:.1f}s")
    return True


def resume(s: Settings) -> bool:
    """Serve again the BMCs last asked for (with the lab credentials); False when none or already up."""
    record = _record(s)
    if not record.exists():
        return False
    saved = json.loads(record.read_text())
    return ensure_running(s, [{**b, **credentials(s)} for b in saved]) if saved else False


def _probe(url: str, auth: tuple[str, str], ca: Path) -> bool:
    try:
        return requests.get(url, auth=auth, verify=str(ca), timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _wait_ready(s: Settings, proc: subprocess.Popen, bmcs: list[dict], listen_port: int, timeout: float) -> None:
    ca = ca_file(s)
    pending = {b["address"]: b for b in bmcs}
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=16) as pool:
        while pending:
            if proc.poll() is not None:
                tail = _log(s).read_text(errors="replace").splitlines()[-15:] if _log(s).exists() else []
                raise LabError("the BMC emulators' launcher exited:\n" + "\n".join(tail))
            if time.monotonic() > deadline:
                raise LabError(f"{len(pending)} of {len(bmcs)} BMC emulators (first {next(iter(pending))}) did not "
                               f"answer within {timeout:.0f}s; see {_log(s)}")
            # Probe only the ones already listening; the rest are still being forked.
            listening = [pending[a] for a in pending if port_open(listen_port, a)]
            ok = pool.map(lambda b: _probe(f"https://{b['address']}:{listen_port}/redfish/v1/Systems",
                                           (b["username"], b["password"]), ca), listening)
            for address, answered in zip([b["address"] for b in listening], list(ok), strict=True):
                if answered:
                    del pending[address]
            if pending:
                time.sleep(0.2)


def _wait_listening(s: Settings, proc: subprocess.Popen, address: str, listen_port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(listen_port, address):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the artifact server on {address}:{listen_port} did not start; see {_log(s)}")
        time.sleep(0.2)


def stop(s: Settings) -> bool:
    """Stop this state directory's emulators (the launcher stops its children); True if any ran."""
    if read_pid(_pidfile(s)) is None:
        _pidfile(s).unlink(missing_ok=True)
        return False
    with _locked(s):
        return _stop(s)


def _stop(s: Settings, quiet: bool = False) -> bool:
    pidfile = _pidfile(s)
    if quiet and read_pid(pidfile) is None:
        pidfile.unlink(missing_ok=True)
        return False
    return stop_pid(pidfile, "bmc emulators", timeout=60)


# -- introspection (tests, README numbers) -------------------------------------------------------

def processes(s: Settings) -> list[int]:
    """The pids of the per-BMC children of the running launcher."""
    parent = read_pid(_pidfile(s))
    if parent is None:
        return []
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def memory(pid: int) -> dict[str, int]:
    """A process's Rss and Pss (shared pages split among their sharers) in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[key] = int(rest.split()[0])
    return out


# -- the virtual-media lab (golden-image deploy tests) ------------------------------------------------

def vmedia_settings(s: Settings) -> Settings:
    """Its own state directory (pidfile, CA, logs): it runs beside the fleet's BMCs, never instead of them."""
    return dataclasses.replace(s, state=s.state / "vmedia-lab")


def vmedia_lab(s: Settings, count: int = 2) -> dict:
    """Fake-driver BMCs with virtual media (127.101.0.1..count) and the artifact server they download from
    (http://127.101.0.254:<API port + 9>/, serving artifact_dir). Idempotent; returns what a client needs."""
    v = vmedia_settings(s)
    root = v.state / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    cred = credentials(s)
    bmcs = [{"name": f"vmedia-n{n:02d}", "address": VMEDIA_ADDRESSES.format(n), "driver": FAKE, **cred}
            for n in range(1, count + 1)]
    # Beside the lab's API port, so two labs on one machine (other ports) do not collide.
    artifacts = {"address": VMEDIA_ADDRESSES.format(254), "port": s.api_port + 9, "root": str(root)}
    ensure_running(v, bmcs, artifacts)
    return {"bmcs": [{k: b[k] for k in ("name", "address", "username")} for b in bmcs], "port": port(),
            "ca": str(ca_file(v)), "artifact_dir": str(root),
            "artifact_base_url": f"http://{artifacts['address']}:{artifacts['port']}"}


def stop_vmedia_lab(s: Settings) -> bool:
    return stop(vmedia_settings(s))
