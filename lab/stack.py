"""`gpucloud-lab up|down|status|env`: the lab's services on 127.0.0.1, started and stopped by pid.

`up` is idempotent: a second run checks what is already running and returns in about a second.
`down` stops only the processes whose pid files this state directory holds.
"""

import argparse
import sys
import time

from lab import bmc_emulator, netbox_server, node_host, postgres, redis_server, runner_service, workers
from lab.proc import LabError
from lab.settings import Settings, load


def read_env(s: Settings) -> dict[str, str]:
    if not s.env_file.exists():
        return {}
    pairs = (line.split("=", 1) for line in s.env_file.read_text().splitlines() if "=" in line)
    return {k.removeprefix("export "): v for k, v in pairs}


def write_env(s: Settings, token: str) -> dict[str, str]:
    env = runner_service.runner_env(s, {"NETBOX_URL": s.netbox_url, "NETBOX_TOKEN": token,
                                        "GPUCLOUD_REDIS_URL": s.redis_url, **bmc_emulator.env(s)})
    s.env_file.touch(mode=0o600)
    s.env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    return env


def up(s: Settings) -> dict[str, str]:
    started = time.monotonic()
    for path in (s.state, s.run, s.logs, s.netbox_root / "conf"):
        path.mkdir(parents=True, exist_ok=True)
    steps = {
        "redis": redis_server.ensure_running(s),
        "netbox venv": netbox_server.ensure_venv(s),
        "postgresql": postgres.ensure_running(s),
    }
    reload_netbox = netbox_server.ensure_plugin(s) | netbox_server.write_config(s)
    if reload_netbox:
        netbox_server.stop(s)  # started again below with the new plugin or configuration
    database = netbox_server.ensure_database(s)
    netbox_server.ensure_static(s)
    steps["netbox"] = netbox_server.ensure_gunicorn(s)
    env = write_env(s, netbox_server.ensure_token(s))
    runner_service.bootstrap(s, env)
    steps["runner"] = runner_service.ensure_running(s, env)
    steps["bmcs"] = bmc_emulator.resume(s)  # the BMCs of the last seeded fleet (seed starts them)
    steps["supervisord"] = node_host.ensure_supervisor(s)  # the emulated servers' service manager
    for name, changed in steps.items():
        print(f"  {name:12} {'started' if changed else 'ok'}")
    print(f"  {'database':12} {database}")
    print(f"lab up in {time.monotonic() - started:.1f}s: NetBox {s.netbox_url} (UI user "
          f"'{netbox_server.ADMIN_USER}', password in {s.cache / 'lab-secrets.json'}); "
          f"environment in {s.env_file}")
    return read_env(s)


def down(s: Settings) -> None:
    """Stop this lab and the labs of the test workers beside it (lab/workers.py)."""
    stopped = [_down(workers.settings(s, n)) for n in workers.started(s)] + [_down(s)]
    if not any(stopped):
        print("nothing was running")


def _down(s: Settings) -> bool:
    from lab import fabric_lab

    return any([fabric_lab.down_all(s), node_host.stop_supervisor(s), bmc_emulator.stop(s),
                bmc_emulator.stop_vmedia_lab(s), runner_service.stop(s),
                netbox_server.stop(s), postgres.stop(s), redis_server.stop(s)])


def status(s: Settings) -> int:
    from lab.proc import port_open

    services = {"postgresql": s.pg_port, "redis": s.redis_port, "netbox": s.netbox_port, "runner-api": s.api_port}
    down_ = [name for name, port in services.items() if not port_open(port)]
    for name, port in services.items():
        print(f"  {name:12} 127.0.0.1:{port}  {'down' if name in down_ else 'up'}")
    return 1 if down_ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpucloud-lab", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env", "seed", "demo"])
    parser.add_argument("--nodes", type=int, default=32, help="seed/demo: demo fleet size (default 32)")
    parser.add_argument("--fresh", action="store_true", help="seed: regenerate even if a dump is cached")
    args = parser.parse_args(argv)
    s = load()
    try:
        if args.command == "up":
            up(s)
        elif args.command == "down":
            down(s)
        elif args.command == "seed":
            from lab.seed import ensure_fleet

            print(ensure_fleet(s, up(s), args.nodes, fresh=args.fresh))
        elif args.command == "demo":
            from lab.demo import run

            run(s, args.nodes)
        elif args.command == "env":
            print(s.env_file.read_text() if s.env_file.exists() else "", end="")
        else:
            return status(s)
    except LabError as exc:
        print(f"gpucloud-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
