"""Runs inside the sushy-tools virtualenv (not the project's): one Redfish emulator process per BMC.

Started by `lab/bmc_emulator.py` as `<sushy venv>/bin/python lab/bmc_launcher.py` with its JSON
configuration on stdin (so the BMC passwords never touch argv or the disk in clear):

    {"port": 443, "libvirt_uri": "test:///default", "state_dir": ".../bmc/sushy-state",
     "auth_dir": ".../bmc/auth", "log_level": "WARNING",
     "credentials": [{"username": "admin", "password": "..."}],
     "bmcs": [{"name": "gpu-dc1-r01-k01-n01", "address": "127.100.0.1", "uuid": "...",
               "cert": ".../tls/....pem", "auth": 0}]}

The parent imports sushy-tools, libvirt, Flask and werkzeug once, writes one htpasswd-style file
per distinct credential (bcrypt, cost 4), opens `test:///default` (libvirt's in-process test
hypervisor), removes its sample domain, serves one throwaway system in-process to warm up what the
first requests build, freezes the heap for the garbage collector, then forks one child per BMC and
restarts a child that dies. A forked child has its own copy of that in-process hypervisor: it
defines only its own server (so Systems, Managers and Chassis show exactly that one) and keeps its
own connection open for its whole life, since the test driver's state lives only as long as a
connection to it does and sushy-tools opens and closes a connection per call. Each child serves
HTTPS with werkzeug's threaded server, the TLS handshake done in the request's thread.

A BMC entry with "driver": "fake" gets sushy-tools' fake systems driver instead of a libvirt
domain: libvirt's test hypervisor cannot take an uploaded volume, so virtual media (InsertMedia)
works only there. It is a stand-in only for what cannot exist here (see lab/bmc_emulator.py). With
"artifacts": {"address", "port", "root"} in the configuration, one more child serves root over
plain HTTP: the artifact store those BMCs download inserted media from.

SIGTERM to the parent stops every child; children also get SIGTERM if the parent dies.
"""

import contextlib
import ctypes
import functools
import gc
import json
import os
import shutil
import signal
import ssl
import sys
import time

PR_SET_PDEATHSIG = 1
QUICK_EXIT_S = 5.0      # a child that dies sooner than this after its start counts as failing
MAX_QUICK_EXITS = 5     # then the parent gives up on that BMC (the log says why)

DOMAIN_XML = """\
<domain type='test'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='GiB'>2048</memory>
  <vcpu>224</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='network'/><boot dev='hd'/></os>
  <devices><interface type='network'><source network='default'/></interface></devices>
</domain>
"""
WARMUP = {"name": "gpucloud-warmup", "uuid": "00000000-0000-4000-8000-000000000001"}


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} bmc-launcher[{os.getpid()}] {message}", file=sys.stderr, flush=True)


def write_auth_files(cfg: dict) -> list[str]:
    import bcrypt

    os.makedirs(cfg["auth_dir"], mode=0o700, exist_ok=True)
    paths = []
    for n, cred in enumerate(cfg["credentials"]):
        digest = bcrypt.hashpw(cred["password"].encode(), bcrypt.gensalt(rounds=4)).decode()
        path = os.path.join(cfg["auth_dir"], f"htpasswd-{n}")
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{cred['username']}:{digest}\n")
        os.replace(path + ".tmp", path)
        paths.append(path)
    return paths


def own_system(conn, bmc: dict) -> None:
    """Leave exactly one domain in this process's test hypervisor: the BMC's own server, powered on."""
    import libvirt

    for dom in conn.listAllDomains():
        if dom.name() != bmc["name"]:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    try:
        dom = conn.lookupByName(bmc["name"])
    except libvirt.libvirtError:
        dom = conn.defineXML(DOMAIN_XML.format(name=bmc["name"], uuid=bmc["uuid"]))
    if not dom.isActive():
        dom.create()


def warm_up(app, conn, cfg: dict) -> None:
    """Serve one throwaway system in the parent so that what the first requests build (routing
    tables, template and driver state, sqlite, XML) is built once and shared copy-on-write."""
    import ctypes.util

    config = {"SUSHY_EMULATOR_LIBVIRT_URI": cfg["libvirt_uri"], "SUSHY_EMULATOR_FEATURE_SET": "full",
              "SUSHY_EMULATOR_STATE_DIR": cfg["state_dir"]}
    app.configure(extra_config=config)
    for name in app.jinja_env.list_templates():
        app.jinja_env.get_template(name)
    own_system(conn, WARMUP)
    system = f"/redfish/v1/Systems/{WARMUP['uuid']}"
    with app.test_client() as client:
        for path in ("/redfish/v1/", "/redfish/v1/Systems", system, f"{system}/BIOS", f"{system}/BIOS/Settings",
                     f"/redfish/v1/Managers/{WARMUP['uuid']}", "/redfish/v1/Chassis", "/redfish/v1/none"):
            client.get(path)
    dom = conn.lookupByName(WARMUP["name"])
    dom.destroy()
    dom.undefine()
    app._cache = {}  # the memoized drivers: each child builds its own against its own hypervisor
    gc.collect()
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    gc.freeze()


def fake_config(bmc: dict, cfg: dict) -> dict:
    """sushy-tools' fake driver holding exactly this BMC's system, powered on, in a state directory of its
    own (the driver lists every system of its sqlite file, so a shared one would show all the fake BMCs)."""
    state = os.path.join(cfg["state_dir"], "fake", bmc["name"])
    shutil.rmtree(state, ignore_errors=True)  # a (re)started BMC starts fresh, like the libvirt ones
    mac = "52:54:00:" + ":".join(bmc["uuid"].replace("-", "")[i:i + 2] for i in (0, 2, 4))
    return {"SUSHY_EMULATOR_FAKE_DRIVER": True, "SUSHY_EMULATOR_STATE_DIR": state,
            "SUSHY_EMULATOR_FAKE_SYSTEMS": [{"uuid": bmc["uuid"], "name": bmc["name"], "power_state": "On",
                                             "external_notifier": False, "nics": [{"mac": mac, "ip": bmc["address"]}]}]}


def serve_artifacts(artifacts: dict, parent: int) -> None:
    """The artifact store child: plain HTTP GET/HEAD of the files under root, until SIGTERM."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(0)

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    handler = functools.partial(Handler, directory=artifacts["root"])
    ThreadingHTTPServer((artifacts["address"], artifacts["port"]), handler).serve_forever()


def serve(bmc: dict, cfg: dict, auth_file: str, parent: int) -> None:
    """The child: one BMC's Redfish service on its own address, until SIGTERM."""
    import libvirt
    from sushy_tools.emulator.main import app
    from werkzeug.serving import WSGIRequestHandler, make_server

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(0)

    common = {"SUSHY_EMULATOR_AUTH_FILE": auth_file, "SUSHY_EMULATOR_FEATURE_SET": "full"}
    if bmc.get("driver") == "fake":
        app.configure(extra_config={**common, **fake_config(bmc, cfg)})
    else:
        conn = libvirt.open(cfg["libvirt_uri"])  # kept open for the process's life: the hypervisor lives with it
        own_system(conn, bmc)
        app.configure(extra_config={**common, "SUSHY_EMULATOR_LIBVIRT_URI": cfg["libvirt_uri"],
                                    "SUSHY_EMULATOR_STATE_DIR": cfg["state_dir"]})
        app.config["GPUCLOUD_LIBVIRT_CONNECTION"] = conn

    class Handler(WSGIRequestHandler):
        timeout = 60  # a client that stalls mid-request frees its thread

        def log_request(self, code="-", size="-"):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(bmc["cert"])
    server = make_server(bmc["address"], cfg["port"], app, threaded=True, request_handler=Handler)
    # Handshake in the request's thread, not in accept(): a silent client cannot stall the BMC.
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.ssl_context = ctx
    server.serve_forever()


def main() -> int:
    cfg = json.load(sys.stdin)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.environ.pop("SUSHY_EMULATOR_CONFIG", None)

    import logging

    import libvirt
    from sushy_tools.emulator.main import app

    logging.basicConfig(level=cfg.get("log_level", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors are raised, not printed
    auth_files = write_auth_files(cfg)
    os.makedirs(cfg["state_dir"], exist_ok=True)
    # The parent's connection keeps the test hypervisor initialised (and empty: its sample domain
    # removed); every child inherits a private copy of it and keeps its own connection open.
    conn = libvirt.open(cfg["libvirt_uri"])
    for dom in conn.listAllDomains():
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    warm_up(app, conn, cfg)

    parent = os.getpid()
    children: dict[int, dict] = {}
    started: dict[str, float] = {}
    quick_exits: dict[str, int] = {}
    stopping = False

    def spawn(bmc: dict) -> None:
        # SIGTERM stays blocked across fork: a child must never run the parent's handler (it would
        # signal its siblings); the child restores the default action before unblocking it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            code = 0
            try:
                if bmc.get("kind") == "artifacts":
                    serve_artifacts(cfg["artifacts"], parent)
                else:
                    serve(bmc, cfg, auth_files[bmc["auth"]], parent)
            except BaseException as exc:  # the child must never return into the parent's loop
                log(f"{bmc['name']} {bmc['address']}:{cfg['port']}: {type(exc).__name__}: {exc}")
                code = 1
            finally:
                os._exit(code)
        children[pid] = bmc
        started[bmc["name"]] = time.monotonic()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    def on_term(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    t0 = time.monotonic()
    artifact_server = ([{"name": "artifacts", "address": cfg["artifacts"]["address"], "kind": "artifacts"}]
                       if cfg.get("artifacts") else [])
    for bmc in cfg["bmcs"] + artifact_server:
        if stopping:
            break
        spawn(bmc)
    log(f"forked {len(children)} BMC emulators on port {cfg['port']} in {time.monotonic() - t0:.1f}s")

    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        bmc = children.pop(pid, None)
        if bmc is None or stopping:
            continue
        ran = time.monotonic() - started[bmc["name"]]
        log(f"{bmc['name']} ({bmc['address']}) exited with status {status} after {ran:.1f}s")
        quick_exits[bmc["name"]] = quick_exits.get(bmc["name"], 0) + 1 if ran < QUICK_EXIT_S else 0
        if quick_exits[bmc["name"]] >= MAX_QUICK_EXITS:
            log(f"{bmc['name']}: giving up after {MAX_QUICK_EXITS} quick exits")
            continue
        time.sleep(min(2.0, 0.2 * quick_exits[bmc["name"]]))
        if not stopping:
            spawn(bmc)
    log("all BMC emulators stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
