"""dokploy/docker-compose.frontend.yml and dokploy/Dockerfile.frontend: the console's deployment.

The generic rules (every value ``${VAR}``, health checks, restart policy, the external network, no
literal secrets) and the compose-spec schema run on this file in test_compose.py, which takes every
dokploy/docker-compose*.yml. These are the console's own rules, read as text (no Docker engine here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .compose_rules import EXPRESSION, problems, variables
from .test_dockerfile import Instruction, instructions

ROOT = Path(__file__).resolve().parents[3]
DOKPLOY = ROOT / "dokploy"
FRONTEND_COMPOSE = DOKPLOY / "docker-compose.frontend.yml"
BACKEND_COMPOSE = DOKPLOY / "docker-compose.backend.yml"
DOCKERFILE = DOKPLOY / "Dockerfile.frontend"
FRONTEND = ROOT / "frontend"


def compose() -> dict[str, object]:
    doc = yaml.safe_load(FRONTEND_COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def console() -> dict[str, object]:
    service = compose()["services"]["console"]  # type: ignore[index]
    assert isinstance(service, dict)
    return service


def build_stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_the_file_follows_the_deployment_rules() -> None:
    assert problems(compose()) == []


def test_every_public_variable_the_code_reads_is_a_build_argument() -> None:
    """Next inlines NEXT_PUBLIC_* at build time: each one the sources read must reach the build, as an ARG."""
    sources = [p for p in FRONTEND.rglob("*.ts*") if "node_modules" not in p.parts and ".next" not in p.parts]
    read = {m for p in sources for m in re.findall(r"process\.env\.(NEXT_PUBLIC_[A-Z0-9_]+)", p.read_text())}
    assert "NEXT_PUBLIC_API_URL" in read
    args = console()["build"]["args"]  # type: ignore[index]
    assert set(args) == read
    assert all(EXPRESSION.fullmatch(value) for value in args.values())
    declared = {i.args.split("=")[0] for i in instructions(DOCKERFILE.read_text()) if i.keyword == "ARG"}
    assert read <= declared
    environment = console()["environment"]
    assert isinstance(environment, dict)
    assert not any(name.startswith("NEXT_PUBLIC_") for name in environment)  # too late at run time


def test_the_runtime_settings_are_required_or_defaulted_as_the_console_reads_them() -> None:
    environment = console()["environment"]
    assert isinstance(environment, dict)
    assert set(environment) == {"SUPABASE_URL", "SUPABASE_ANON_KEY", "BACKEND_API_URL", "PORT", "HOSTNAME"}
    ops = {key: EXPRESSION.fullmatch(value)["op"] for key, value in environment.items()}  # type: ignore[index]
    assert ops["SUPABASE_URL"] == ops["SUPABASE_ANON_KEY"] == ":?"
    # The API by its alias on the backend's network.
    assert environment["BACKEND_API_URL"] == "${BACKEND_API_URL:-http://neiromatrius-api:8000}"
    backend = yaml.safe_load(BACKEND_COMPOSE.read_text())
    assert "neiromatrius-api" in backend["services"]["api"]["networks"]["supabase"]["aliases"]


def test_it_joins_the_backends_network() -> None:
    backend = yaml.safe_load(BACKEND_COMPOSE.read_text())
    assert compose()["networks"] == backend["networks"]
    assert list(console()["networks"]) == ["supabase"]  # type: ignore[arg-type]


def test_the_health_check_asks_the_consoles_own_health_route_with_node() -> None:
    check = console()["healthcheck"]
    assert isinstance(check, dict)
    assert check["test"][:3] == ["CMD", "node", "-e"]
    assert "/health" in check["test"][3] and "process.env.PORT" in check["test"][3]
    assert (FRONTEND / "app" / "health" / "route.ts").is_file()


def test_the_build_points_at_the_frontend_and_its_dockerfile() -> None:
    build = console()["build"]
    assert isinstance(build, dict)
    context = (DOKPLOY / build["context"]).resolve()
    assert context == FRONTEND.resolve()
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert "node_modules" in (FRONTEND / ".dockerignore").read_text().split()
    assert ".next" in (FRONTEND / ".dockerignore").read_text().split()


def test_the_dockerfile_is_multi_stage_on_node_22_and_runs_the_standalone_server() -> None:
    stages = build_stages()
    assert len(stages) == 3
    first_arg = next(i for i in instructions(DOCKERFILE.read_text()) if i.keyword == "ARG")
    assert re.fullmatch(r"NODE_IMAGE=node:(\d+)-\S+", first_arg.args)
    assert int(re.fullmatch(r"NODE_IMAGE=node:(\d+)-\S+", first_arg.args)[1]) >= 22  # type: ignore[index]
    builder = stages[1]
    assert any(i.keyword == "RUN" and i.args == "npm run build" for i in builder)
    final = stages[-1]
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert any("/app/.next/standalone ./" in c for c in copies)
    assert any("/app/.next/static ./.next/static" in c for c in copies)
    assert [i.exec_form() for i in final if i.keyword == "CMD"] == [["node", "server.js"]]
    assert not any(i.keyword == "COPY" and "node_modules" in i.args for i in final)  # standalone brings its own
    assert json.loads((FRONTEND / "package.json").read_text())["scripts"]["build"] == "next build"
    assert 'output: "standalone"' in (FRONTEND / "next.config.ts").read_text()


def test_the_image_runs_as_a_numeric_non_root_user_and_listens_everywhere() -> None:
    final = build_stages()[-1]
    (user,) = [i.args for i in final if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "HOSTNAME=0.0.0.0" in env and "PORT=3000" in env and "NODE_ENV=production" in env


def test_no_secret_is_a_build_argument() -> None:
    """Build arguments end up in the image's history: only public values may be one."""
    names = {i.args.split("=")[0] for i in instructions(DOCKERFILE.read_text()) if i.keyword == "ARG"}
    assert names == {"NODE_IMAGE", "NEXT_PUBLIC_API_URL"}
    assert variables(console()["build"]) == {"NEXT_PUBLIC_API_URL"}


def test_the_readme_documents_every_console_variable() -> None:
    readme = (DOKPLOY / "README.md").read_text()
    missing = [name for name in sorted(variables(compose()) - {"SUPABASE_NETWORK"}) if f"`{name}`" not in readme]
    assert missing == []
