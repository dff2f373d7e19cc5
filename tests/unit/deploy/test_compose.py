"""The Compose files in dokploy/: the compose-spec schema, the deployment rules, the settings they pass."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from neiromatrius.config import Settings, load_settings

from . import compose_rules
from .compose_rules import EXPRESSION, problems, settings_problems

ROOT = Path(__file__).resolve().parents[3]
DOKPLOY = ROOT / "dokploy"
BACKEND = DOKPLOY / "docker-compose.backend.yml"
REDIS = DOKPLOY / "docker-compose.redis.yml"
COMPOSE_FILES = sorted(DOKPLOY.glob("docker-compose*.yml"))

# Settings for local development only (`neiromatrius run` sets them) never reach a deployment.
SETTINGS = {name.upper() for name, field in Settings.model_fields.items() if field.json_schema_extra is None}
REQUIRED = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}
# Variables the Compose files use that are not Settings; dokploy/README.md documents each.
COMPOSE_ONLY = {
    "NEIROMATRIUS_IMAGE": "the image tag to build (or pull)",
    "SUPABASE_NETWORK": "the Supabase stack's Docker network",
    "LOG_LEVEL": "read by the neiromatrius command itself, before Settings",
    "REDIS_PASSWORD": "the Redis app's password (it goes into REDIS_URL)",
    "REDIS_IMAGE": "the Redis image",
}
# Inside a container the servers listen on every interface; elsewhere config.py's loopback default stands.
CONTAINER_OVERRIDES = {"API_HOST": "0.0.0.0", "LISTENER_METRICS_HOST": "0.0.0.0"}

MINIMAL_ENV = {
    "SUPABASE_URL": "http://kong:8000",
    "SUPABASE_SERVICE_ROLE_KEY": "service-role",
    "SECRET_KEY": "s" * 40,
}
# A valid value for every optional setting whose default is "unset".
OPTIONAL_ENV = {
    "SUPABASE_ANON_KEY": "anon",
    "DATABASE_URL": "postgresql+asyncpg://postgres:pw@db:5432/postgres",
    "OPENAI_API_KEY": "openai",
    "WEBHOOK_SECRET": "whsec_c2VjcmV0",
    "REDIS_URL": "redis://:pw@neiromatrius-redis:6379/0",
    "TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35,
    "TELEGRAM_WEBHOOK_SECRET": "telegram-secret",
    "METRICS_TOKEN": "metrics",
    "INTAKE_API_KEY": "intake",
}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's substitution for the forms the files use: ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?m}``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = env.get(name)
        if op == ":?" and not value:
            raise LookupError(f"{name}: {arg}")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return EXPRESSION.sub(one, value)


def container_env(service: str, env: Mapping[str, str]) -> dict[str, str]:
    environment = load(BACKEND)["services"][service]["environment"]
    return {key: interpolate(value, env) for key, value in environment.items()}


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process reads them from exactly ``env``."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(_env_file=None)


def test_the_backend_and_redis_files_exist() -> None:
    assert {path.name for path in COMPOSE_FILES} >= {BACKEND.name, REDIS.name}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_file_is_valid_against_the_compose_spec_schema(path: Path) -> None:
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_schema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    text = BACKEND.read_text().replace("    healthcheck:", "    healtcheck:", 1)
    broken = tmp_path / "docker-compose.broken.yml"
    broken.write_text(text)
    result = check_jsonschema(broken)
    assert result.returncode == 1
    assert "'healtcheck' was unexpected" in result.stdout


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_file_follows_the_deployment_rules(path: Path) -> None:
    assert problems(load(path)) == []


def test_backend_passes_every_setting_through_by_its_own_name() -> None:
    assert settings_problems(load(BACKEND), SETTINGS, COMPOSE_ONLY) == []


def test_redis_file_uses_only_documented_variables() -> None:
    assert compose_rules.variables(load(REDIS)) <= set(COMPOSE_ONLY)


def test_exactly_the_required_settings_are_required_by_compose() -> None:
    environment = load(BACKEND)["services"]["api"]["environment"]
    operators = {key: match["op"] for key, value in environment.items() if (match := EXPRESSION.fullmatch(value))}
    assert set(operators) == set(environment)
    assert {key for key, op in operators.items() if op == ":?"} == REQUIRED


@pytest.mark.parametrize("service", ["api", "listener"])
def test_compose_defaults_are_config_defaults(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = MINIMAL_ENV | OPTIONAL_ENV
    expected = settings_from(env, monkeypatch).model_dump()
    rendered = container_env(service, env)
    actual = settings_from(rendered, monkeypatch).model_dump()
    for name, value in CONTAINER_OVERRIDES.items():
        assert actual.pop(name.lower()) == value
        expected.pop(name.lower())
    assert actual == expected
    assert rendered["LOG_LEVEL"] == "INFO"


def test_an_operators_value_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = container_env("api", MINIMAL_ENV | OPTIONAL_ENV | {"API_PORT": "8080", "OPENAI_MODEL": "gpt-4.1"})
    settings = settings_from(rendered, monkeypatch)
    assert (settings.api_port, settings.openai_model) == (8080, "gpt-4.1")


def test_only_the_required_variables_are_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(container_env("api", MINIMAL_ENV), monkeypatch)
    assert settings.openai_api_key is None
    assert settings.redis_url is None


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_stop_grace_periods_outlast_the_processes_own_shutdown() -> None:
    services = load(BACKEND)["services"]
    fields = Settings.model_fields
    uvicorn_grace = max(5.0, fields["reply_wait_seconds"].default + 1)  # serve.py's timeout_graceful_shutdown
    assert seconds(services["api"]["stop_grace_period"]) > uvicorn_grace
    assert seconds(services["listener"]["stop_grace_period"]) > fields["shutdown_grace_seconds"].default


@pytest.mark.parametrize(("service", "port_variable"), [("api", "API_PORT"), ("listener", "LISTENER_METRICS_PORT")])
def test_each_process_checks_its_own_health_endpoint(service: str, port_variable: str) -> None:
    check = load(BACKEND)["services"][service]["healthcheck"]
    kind, program, flag, code = check["test"]
    assert (kind, program, flag) == ("CMD", "python", "-c")
    compile(code, f"{service} healthcheck", "exec")
    assert "/health" in code
    assert f"os.environ.get('{port_variable}'" in code
    assert "$" not in code  # Compose would interpolate it


def test_both_processes_share_one_image_and_the_supabase_network() -> None:
    doc = load(BACKEND)
    api, listener = doc["services"]["api"], doc["services"]["listener"]
    assert api["image"] == listener["image"] == "${NEIROMATRIUS_IMAGE:-neiromatrius:latest}"
    assert api["build"] == listener["build"] == {"context": "..", "dockerfile": "dokploy/Dockerfile"}
    assert (BACKEND.parent / api["build"]["context"] / api["build"]["dockerfile"]).is_file()
    assert (api["command"], listener["command"]) == (["api"], ["listener"])
    assert doc["networks"] == {"supabase": {"name": "${SUPABASE_NETWORK:-supabase_default}", "external": True}}
    assert "ports" not in api and "ports" not in listener  # Dokploy's Traefik routes the domain


def test_redis_requires_a_password_persists_and_publishes_nothing() -> None:
    doc = load(REDIS)
    redis = doc["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == "${REDIS_PASSWORD:?REDIS_PASSWORD is required}"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD")
    assert redis["healthcheck"]["test"] == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]
    assert redis["volumes"] == ["redis-data:/data"] and "redis-data" in doc["volumes"]
    assert "ports" not in redis
    assert doc["networks"] == load(BACKEND)["networks"]


def test_the_readme_documents_every_variable() -> None:
    readme = (DOKPLOY / "README.md").read_text()
    missing = [name for name in sorted(SETTINGS | set(COMPOSE_ONLY)) if f"`{name}`" not in readme]
    assert missing == []


Mutation = Callable[[dict[str, Any]], None]


def _add_service_depending_on(target: str, condition: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        doc["services"]["worker"] = copy.deepcopy(doc["services"]["listener"])
        doc["services"]["worker"]["depends_on"] = {target: {"condition": condition}}

    return mutate


def _set(path: str, value: object) -> Mutation:
    *parents, last = path.split(".")

    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    *parents, last = path.split(".")

    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _both(first: Mutation, second: Mutation) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        first(doc)
        second(doc)

    return mutate


BROKEN_BACKEND: dict[str, tuple[Mutation, str]] = {
    "no healthcheck": (_delete("services.api.healthcheck"), "services.api.healthcheck: missing"),
    "healthcheck without test": (_delete("services.api.healthcheck.test"), "services.api.healthcheck.test: must run"),
    "empty test": (_set("services.api.healthcheck.test", []), "services.api.healthcheck.test: must run"),
    "test without a command": (_set("services.listener.healthcheck.test", ["CMD"]), "listener.healthcheck.test"),
    "disabled healthcheck": (_set("services.api.healthcheck.disable", True), "services.api.healthcheck: disabled"),
    "no retries": (_delete("services.api.healthcheck.retries"), "services.api.healthcheck.retries: missing"),
    "literal secret": (
        _set("services.api.environment.OPENAI_API_KEY", "sk-proj-abcdefghijklmnopqrstuv"),
        "services.api.environment.OPENAI_API_KEY: 'sk-proj-abcdefghijklmnopqrstuv' is a literal",
    ),
    "secret with a default": (
        _set("services.api.environment.SECRET_KEY", "${SECRET_KEY:-change-me-change-me-change-me-1234}"),
        "${SECRET_KEY}: a secret must have no default",
    ),
    "literal image": (_set("services.api.image", "neiromatrius:1.0"), "services.api.image: 'neiromatrius:1.0'"),
    "literal port": (_set("services.api.ports", ["8000:8000"]), "services.api.ports: '8000:8000'"),
    "undeclared network": (
        _set("services.api.networks", ["supabase", "backend"]),
        "services.api.networks: 'backend' is not declared under top-level networks",
    ),
    "shared network not external": (
        _set("networks.supabase.external", False),
        "services.api.networks: joins no external network",
    ),
    "literal network name": (_set("networks.supabase.name", "supabase_default"), "networks.supabase.name"),
    "depends on a missing service": (
        _add_service_depending_on("db", "service_started"),
        "services.worker.depends_on: 'db' is not a service in this file",
    ),
    "waits for a service without healthcheck": (
        _both(_add_service_depending_on("listener", "service_healthy"), _delete("services.listener.healthcheck")),
        "services.worker.depends_on: waits for 'listener' to be healthy, but it has no healthcheck",
    ),
    "no restart policy": (_delete("services.listener.restart"), "services.listener.restart: None"),
    "credentials in a URL": (
        _set("services.api.labels", ["db=postgresql+asyncpg://postgres:hunter2@db:5432/postgres"]),
        "literal secret: a URL with a password",
    ),
}


@pytest.mark.parametrize("case", BROKEN_BACKEND, ids=str)
def test_rules_name_what_is_broken(case: str) -> None:
    mutate, expected = BROKEN_BACKEND[case]
    doc = copy.deepcopy(load(BACKEND))
    mutate(doc)
    found = problems(doc)
    assert any(expected in problem for problem in found), found


BROKEN_SETTINGS: dict[str, tuple[Mutation, str]] = {
    "unknown variable": (
        _set("services.api.environment.OPENAI_MODEL", "${OPENAI_MODLE:-gpt-4o-mini}"),
        "takes ${OPENAI_MODLE}; pass ${OPENAI_MODEL} through",
    ),
    "not a setting": (_set("services.api.environment.DEBUG", "${DEBUG}"), "environment.DEBUG: not a setting"),
    "setting left out": (
        _delete("services.api.environment.REDIS_URL"),
        "REDIS_URL from config.py is not passed through",
    ),
    "unknown interpolation": (_set("services.api.image", "${IMAGE_TAG}"), "${IMAGE_TAG}: neither a setting"),
}


@pytest.mark.parametrize("case", BROKEN_SETTINGS, ids=str)
def test_settings_rules_name_what_is_broken(case: str) -> None:
    mutate, expected = BROKEN_SETTINGS[case]
    doc = copy.deepcopy(load(BACKEND))
    mutate(doc)
    found = settings_problems(doc, SETTINGS, COMPOSE_ONLY)
    assert any(expected in problem for problem in found), found


def test_redis_rules_catch_a_literal_password() -> None:
    doc = copy.deepcopy(load(REDIS))
    command = doc["services"]["redis"]["command"]
    command[command.index("--requirepass") + 1] = "hunter2"
    assert "services.redis.command: the value after --requirepass is a literal secret; use ${VAR}" in problems(doc)
