# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: credential
short_description: Resolve a credential reference as stored in NetBox (env, file or HashiCorp Vault)
description:
  - NetBox stores a I(reference) to each BMC's credential (the device custom field C(bmc_credential_ref), exposed
    by the inventory as C(bmc_credential_ref)), never the secret. This lookup turns the reference into the secret
    on the controller.
  - C(env:VAR) reads the environment variable E(VAR) of the controller.
  - C(file:/path) reads the file, with surrounding whitespace stripped.
  - C(vault:<mount>/<path>#<key>) reads key C(key) of the HashiCorp Vault KV version 2 secret C(<path>) under the
    secrets engine mounted at C(<mount>) (the first path segment), i.e. C(GET $VAULT_ADDR/v1/<mount>/data/<path>)
    with the C(X-Vault-Token) header (and C(X-Vault-Namespace) when a namespace is given), over HTTP(S) with
    C(requests). E.g. C(vault:secret/bmc/dc1#password) reads C(/v1/secret/data/bmc/dc1), field C(password).
  - Errors name the reference, never the secret. Use the result only in module options marked C(no_log) (such as
    the C(password) of M(gpucloud.infra.bios_settings)) or on tasks with C(no_log=true).
version_added: "0.2.0"
author: gpucloud contributors
options:
  _terms:
    description: One or more credential references.
    type: list
    elements: str
    required: true
  vault_addr:
    description: Vault base URL, e.g. C(https://vault.example.com:8200).
    type: str
    env:
      - name: VAULT_ADDR
  vault_token:
    description: Vault token.
    type: str
    env:
      - name: VAULT_TOKEN
  vault_namespace:
    description: Vault Enterprise namespace, sent as C(X-Vault-Namespace).
    type: str
    env:
      - name: VAULT_NAMESPACE
  vault_cacert:
    description: CA bundle to verify Vault's TLS certificate with; the system CAs when unset.
    type: path
    env:
      - name: VAULT_CACERT
  vault_timeout:
    description: Seconds to wait for Vault.
    type: float
    default: 10
requirements:
  - requests (for C(vault:) references)
notes:
  - The secret comes back as a plain string; nothing is cached and nothing is written to disk.
"""

EXAMPLES = r"""
- name: Apply BIOS settings with the BMC password NetBox refers to
  gpucloud.infra.bios_settings:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ lookup('gpucloud.infra.credential', bmc_credential_ref) }}"
    profile: gpu_performance

- name: The three kinds of reference
  ansible.builtin.set_fact:
    from_env: "{{ lookup('gpucloud.infra.credential', 'env:GPUCLOUD_LAB_BMC_PASSWORD') }}"
    from_file: "{{ lookup('gpucloud.infra.credential', 'file:/etc/gpucloud/bmc-password') }}"
    from_vault: "{{ lookup('gpucloud.infra.credential', 'vault:secret/bmc/dc1#password') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: The secrets, one per reference, in order.
  type: list
  elements: str
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

try:
    import requests

    HAS_REQUESTS = True
    REQUEST_ERRORS: tuple = (requests.exceptions.RequestException,)
except ImportError:
    HAS_REQUESTS = False
    REQUEST_ERRORS = (OSError,)

SCHEMES = ("env", "file", "vault")


class CredentialError(Exception):
    """A reference that cannot be resolved; the message names the reference, never a secret."""


def parse(ref) -> tuple[str, str]:
    if not isinstance(ref, str) or ":" not in ref:
        raise CredentialError(f"credential reference {ref!r} is not of the form <scheme>:<value> "
                              f"(schemes: {', '.join(SCHEMES)})")
    scheme, _, value = ref.partition(":")
    if scheme not in SCHEMES:
        raise CredentialError(f"credential reference {ref!r} has an unknown scheme {scheme!r} "
                              f"(known: {', '.join(SCHEMES)})")
    if not value:
        raise CredentialError(f"credential reference {ref!r} is empty after {scheme}:")
    return scheme, value


def from_env(ref: str, name: str, environ=None) -> str:
    environ = os.environ if environ is None else environ
    if name not in environ:
        raise CredentialError(f"credential reference {ref!r}: environment variable {name} is not set")
    if not environ[name]:
        raise CredentialError(f"credential reference {ref!r}: environment variable {name} is empty")
    return environ[name]


def from_file(ref: str, path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            secret = handle.read().strip()
    except FileNotFoundError:
        raise CredentialError(f"credential reference {ref!r}: file {path} does not exist") from None
    except IsADirectoryError:
        raise CredentialError(f"credential reference {ref!r}: {path} is a directory") from None
    except PermissionError:
        raise CredentialError(f"credential reference {ref!r}: file {path} is not readable") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"credential reference {ref!r}: cannot read {path} ({type(exc).__name__})") from None
    if not secret:
        raise CredentialError(f"credential reference {ref!r}: file {path} is empty")
    return secret


def vault_request(value: str, addr: str) -> tuple[str, str]:
    """(URL of the KV v2 read, key) for 'mount/path#key'."""
    path, sep, key = value.partition("#")
    path = path.strip("/")
    mount, _, secret_path = path.partition("/")
    if not sep or not key or not mount or not secret_path:
        raise ValueError("expected vault:<mount>/<path>#<key>")
    return f"{addr.rstrip('/')}/v1/{mount}/data/{secret_path}", key


def from_vault(ref: str, value: str, addr: str | None, token: str | None, namespace: str | None = None,
               cacert: str | None = None, timeout: float = 10, session=None) -> str:
    try:
        url, key = vault_request(value, addr or "")
    except ValueError as exc:
        raise CredentialError(f"credential reference {ref!r}: {exc}") from None
    if not addr:
        raise CredentialError(f"credential reference {ref!r}: no Vault address (set VAULT_ADDR)")
    if not token:
        raise CredentialError(f"credential reference {ref!r}: no Vault token (set VAULT_TOKEN)")
    if session is None:
        if not HAS_REQUESTS:
            raise CredentialError(f"credential reference {ref!r}: the Python library requests is needed for Vault")
        session = requests.Session()
        session.trust_env = False  # VAULT_CACERT decides, not REQUESTS_CA_BUNDLE
    headers = {"X-Vault-Token": token, "Accept": "application/json"}
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    try:
        resp = session.get(url, headers=headers, timeout=timeout, verify=cacert or True)
    except REQUEST_ERRORS as exc:
        raise CredentialError(f"credential reference {ref!r}: Vault at {addr} is unreachable "
                              f"({type(exc).__name__})") from None
    if resp.status_code in (401, 403):
        raise CredentialError(f"credential reference {ref!r}: Vault refused the token ({resp.status_code})")
    if resp.status_code == 404:
        raise CredentialError(f"credential reference {ref!r}: Vault has no secret at {url.split('/v1/', 1)[1]} "
                              "(404; is it a KV version 2 engine?)")
    if resp.status_code >= 400:
        raise CredentialError(f"credential reference {ref!r}: Vault answered {resp.status_code}")
    try:
        data = (resp.json().get("data") or {}).get("data") or {}
    except (ValueError, AttributeError):
        raise CredentialError(f"credential reference {ref!r}: Vault's answer is not a KV v2 secret") from None
    if key not in data:
        raise CredentialError(f"credential reference {ref!r}: the Vault secret has no key {key!r} "
                              f"(keys: {', '.join(sorted(data)) or 'none'})")
    if data[key] in (None, ""):
        raise CredentialError(f"credential reference {ref!r}: key {key!r} of the Vault secret is empty")
    return str(data[key])


def resolve(ref, vault: dict | None = None, environ=None) -> str:
    scheme, value = parse(ref)
    if scheme == "env":
        return from_env(ref, value, environ)
    if scheme == "file":
        return from_file(ref, value)
    return from_vault(ref, value, **(vault or {}))


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        vault = {"addr": self.get_option("vault_addr"), "token": self.get_option("vault_token"),
                 "namespace": self.get_option("vault_namespace"), "cacert": self.get_option("vault_cacert"),
                 "timeout": self.get_option("vault_timeout")}
        secrets = []
        for ref in terms:
            try:
                secrets.append(resolve(ref, vault))
            except CredentialError as exc:
                raise AnsibleLookupError(str(exc)) from None
        return secrets
