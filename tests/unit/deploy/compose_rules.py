"""Rules for dokploy/docker-compose*.yml that the compose-spec JSON schema cannot express.

Each check takes the parsed YAML (a dict, YAML merge keys already applied) and returns a list of
problems, one readable line each, empty when the file is fine. What is checked, and why:

- ``image``, every ``environment`` value, every published port and every command argument that
  carries a secret (after ``--requirepass`` and the like) is a whole ``${VAR}`` expression: the
  deployment's hosts and secrets live in Dokploy's environment, never in the repository.
- A variable whose name says secret (``*_KEY``, ``*_SECRET``, ``*_TOKEN``, ``*_PASSWORD``,
  ``*_AUTH``, ``DATABASE_URL``, ``REDIS_URL``) has no default: a default would be a literal secret.
- No scalar anywhere looks like a credential (an OpenAI key, a JWT, a ``whsec_`` secret, a
  Telegram bot token, a URL with a password), whatever key it sits under.
- Every service has a health check that runs something, with interval, timeout and retries;
  a restart policy; networks declared at top level, one of them external (the network shared
  with Supabase) and joined by every service; ``depends_on`` targets that exist, with a health
  check where ``condition: service_healthy`` waits for one.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator, Mapping
from typing import Any

EXPRESSION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|AUTH)$|^(DATABASE_URL|REDIS_URL)$")
SECRET_FLAGS = frozenset({"--requirepass", "--masterauth", "--password", "--token"})
LITERAL_SECRETS = {
    "an OpenAI API key": re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    "a JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "a webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"),
    "a Telegram bot token": re.compile(r"\b[0-9]{6,20}:[A-Za-z0-9_-]{30,}"),
    "a URL with a password": re.compile(r"://[^/\s:@${}]+:(?!\$\{)[^@\s/]+@"),
}
HEALTHCHECK_TIMINGS = ("interval", "timeout", "retries")
RESTART_POLICIES = ("always", "unless-stopped")


def is_expression(value: object) -> bool:
    """The whole value is one ``${VAR}``, ``${VAR:-default}`` or ``${VAR:?message}``."""
    return isinstance(value, str) and EXPRESSION.fullmatch(value) is not None


def variables(doc: object) -> set[str]:
    """Every variable the file interpolates, wherever it appears."""
    return {match["name"] for text in _strings(doc) for match in EXPRESSION.finditer(text.replace("$$", ""))}


def problems(doc: Mapping[str, Any]) -> list[str]:
    """Everything wrong with one parsed Compose file; empty when it follows the rules."""
    services = doc.get("services")
    if not isinstance(services, Mapping) or not services:
        return ["services: the file declares no services"]
    found: list[str] = []
    for name, service in services.items():
        where = f"services.{name}"
        found += _image(where, service)
        found += _environment(where, service)
        found += _command(where, service)
        found += _ports(where, service)
        found += _healthcheck(where, service)
        found += _restart(where, service)
        found += _networks(where, service, doc)
        found += _depends_on(where, service, services)
    found += _shared_network(doc)
    found += _secret_defaults(doc)
    found += _literal_secrets(doc)
    return found


def _image(where: str, service: Mapping[str, Any]) -> list[str]:
    image = service.get("image")
    if image is None:
        return [f"{where}.image: missing; name the image as ${{VAR:-default}}"]
    if not is_expression(image):
        return [f"{where}.image: {image!r} is a literal; use ${{VAR}} or ${{VAR:-default}}"]
    return []


def _environment(where: str, service: Mapping[str, Any]) -> list[str]:
    environment = service.get("environment", {})
    if not isinstance(environment, Mapping):
        return [f"{where}.environment: use the mapping form (NAME: ${{NAME}}) so that every value can be checked"]
    return [
        f"{where}.environment.{key}: {value!r} is a literal; pass it as ${{{key}}}"
        for key, value in environment.items()
        if not is_expression(value)
    ]


def _command(where: str, service: Mapping[str, Any]) -> list[str]:
    found = []
    for key in ("command", "entrypoint"):
        value = service.get(key)
        args = shlex.split(value) if isinstance(value, str) else list(value or [])
        for flag, arg in itertools.pairwise(args):
            if flag in SECRET_FLAGS and not is_expression(arg):
                found.append(f"{where}.{key}: the value after {flag} is a literal secret; use ${{VAR}}")
    return found


def _ports(where: str, service: Mapping[str, Any]) -> list[str]:
    found = []
    for port in service.get("ports", []):
        published = port.get("published") if isinstance(port, Mapping) else str(port).rpartition(":")[0]
        if not published or not all(is_expression(part) for part in str(published).split(":")):
            found.append(f"{where}.ports: {port!r} publishes a literal host or port; use ${{VAR}}")
    return found


def _healthcheck(where: str, service: Mapping[str, Any]) -> list[str]:
    check = service.get("healthcheck")
    if not isinstance(check, Mapping):
        return [f"{where}.healthcheck: missing"]
    if check.get("disable"):
        return [f"{where}.healthcheck: disabled"]
    found = []
    test = check.get("test")
    if isinstance(test, str):
        runs_something = bool(test.strip())
    elif isinstance(test, list):
        runs_something = len(test) >= 2 and test[0] in ("CMD", "CMD-SHELL") and all(str(a).strip() for a in test[1:])
    else:
        runs_something = False
    if not runs_something:
        found.append(f"{where}.healthcheck.test: must run a command ([CMD, ...] or [CMD-SHELL, ...]), got {test!r}")
    found += [f"{where}.healthcheck.{key}: missing" for key in HEALTHCHECK_TIMINGS if key not in check]
    return found


def _restart(where: str, service: Mapping[str, Any]) -> list[str]:
    restart = service.get("restart")
    if restart in RESTART_POLICIES or str(restart).startswith("on-failure"):
        return []
    return [f"{where}.restart: {restart!r}; use unless-stopped (or always / on-failure)"]


def _service_networks(service: Mapping[str, Any]) -> list[str]:
    return list(service.get("networks") or [])


def _networks(where: str, service: Mapping[str, Any], doc: Mapping[str, Any]) -> list[str]:
    declared = doc.get("networks") or {}
    used = _service_networks(service)
    found = [
        f"{where}.networks: {net!r} is not declared under top-level networks" for net in used if net not in declared
    ]
    shared = {name for name, net in declared.items() if isinstance(net, Mapping) and net.get("external")}
    if not shared.intersection(used):
        found.append(f"{where}.networks: joins no external network (the one shared with Supabase)")
    return found


def _depends_on(where: str, service: Mapping[str, Any], services: Mapping[str, Any]) -> list[str]:
    depends = service.get("depends_on") or {}
    conditions = depends if isinstance(depends, Mapping) else {target: {} for target in depends}
    found = []
    for target, spec in conditions.items():
        if target not in services:
            found.append(f"{where}.depends_on: {target!r} is not a service in this file")
        elif (spec or {}).get("condition") == "service_healthy" and "healthcheck" not in services[target]:
            found.append(f"{where}.depends_on: waits for {target!r} to be healthy, but it has no healthcheck")
    return found


def _shared_network(doc: Mapping[str, Any]) -> list[str]:
    found = []
    for name, net in (doc.get("networks") or {}).items():
        if isinstance(net, Mapping) and net.get("external") and not is_expression(net.get("name")):
            found.append(f"networks.{name}.name: the shared network's name must be ${{VAR:-default}}")
    return found


def _secret_defaults(doc: Mapping[str, Any]) -> list[str]:
    found = []
    for text in _strings(doc):
        for match in EXPRESSION.finditer(text):
            if SECRET_NAME.search(match["name"]) and match["op"] in (":-", "-") and match["arg"]:
                found.append(f"${{{match['name']}}}: a secret must have no default (found one)")
    return found


def _literal_secrets(doc: Mapping[str, Any]) -> list[str]:
    return [
        f"literal secret: {what} in the file; move it to the environment as ${{VAR}}"
        for text in _strings(doc)
        for what, pattern in LITERAL_SECRETS.items()
        if pattern.search(text)
    ]


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def settings_problems(doc: Mapping[str, Any], settings: set[str], compose_only: Mapping[str, str]) -> list[str]:
    """The backend file passes settings through unchanged: ``NAME: ${NAME...}``, every NAME a real
    setting (``settings``), every other variable one of the documented ``compose_only`` ones."""
    found = []
    for name, service in (doc.get("services") or {}).items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            match = EXPRESSION.fullmatch(value) if isinstance(value, str) else None
            if key not in settings and key not in compose_only:
                found.append(f"services.{name}.environment.{key}: not a setting in config.py's Settings")
            elif match is not None and match["name"] != key:
                found.append(f"services.{name}.environment.{key}: takes ${{{match['name']}}}; pass ${{{key}}} through")
        found += [
            f"services.{name}.environment: {setting} from config.py is not passed through"
            for setting in sorted(settings - set(environment))
        ]
    found += [
        f"${{{var}}}: neither a setting in config.py nor a documented compose-only variable"
        for var in sorted(variables(doc) - settings - set(compose_only))
    ]
    return found
