"""dokploy/Dockerfile and .dockerignore, read as text: no Docker engine runs here to build them."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "dokploy" / "Dockerfile"
BACKEND = ROOT / "dokploy" / "docker-compose.backend.yml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} should use the exec (JSON) form"
        return [str(item) for item in value]


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped, as Docker reads them."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            joined.append(" ".join(pending.split()))
            pending = ""
    result = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        result.append(Instruction(keyword.upper(), args))
    return result


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def final_stage() -> list[Instruction]:
    return stages()[-1]


def one(stage: list[Instruction], keyword: str) -> Instruction:
    matching = [i for i in stage if i.keyword == keyword]
    assert len(matching) == 1, f"expected one {keyword}, found {len(matching)}"
    return matching[0]


def env(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.args):
                name, _, value = item.partition("=")
                values[name] = value
    return values


def test_the_parser_reads_continuations_and_skips_comments() -> None:
    parsed = instructions("# c\nRUN a \\\n    # inside\n    && b\nUSER 1\n")
    assert parsed == [Instruction("RUN", "a && b"), Instruction("USER", "1")]


def test_both_stages_start_from_python_3_11_slim() -> None:
    args = {
        i.args.split("=")[0]: i.args.split("=", 1)[1]
        for i in instructions(DOCKERFILE.read_text())
        if i.keyword == "ARG"
    }
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    builder, final = stages()
    assert builder[0].args == "${PYTHON_IMAGE} AS builder"
    assert final[0].args == "${PYTHON_IMAGE}"


def test_the_final_stage_takes_only_the_venv_from_the_builder() -> None:
    builder, final = stages()
    assert any("pip install ." in i.args for i in builder if i.keyword == "RUN")
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    assert env(final)["PATH"].startswith("/opt/venv/bin:")


def test_the_process_runs_as_a_non_root_user() -> None:
    final = final_stage()
    users = [i for i in final if i.keyword == "USER"]
    assert users, "no USER in the final stage"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert final.index(users[-1]) > max(final.index(i) for i in final if i.keyword in ("RUN", "COPY"))


def test_one_image_runs_the_api_by_default_and_the_listener_on_request() -> None:
    final = final_stage()
    assert one(final, "ENTRYPOINT").exec_form() == ["neiromatrius"]
    assert one(final, "CMD").exec_form() == ["api"]


def test_the_healthcheck_asks_the_api_with_python_not_curl() -> None:
    check = one(final_stage(), "HEALTHCHECK")
    options, _, command = check.args.partition(" CMD ")
    assert {"--interval=30s", "--timeout=5s", "--retries=3"} <= set(options.split())
    kind, flag, code = json.loads(command)
    assert (kind, flag) == ("python", "-c")
    compile(code, "HEALTHCHECK", "exec")
    assert "urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8000')" in code
    assert "curl" not in check.args
    compose_api = yaml.safe_load(BACKEND.read_text())["services"]["api"]["healthcheck"]["test"]
    assert compose_api[-1] == code  # the image and the Compose file check the same thing


def test_container_defaults_listen_on_every_interface_and_agree_with_compose() -> None:
    values = env(final_stage())
    assert values["PYTHONUNBUFFERED"] == "1"
    expected = {
        "API_HOST": "0.0.0.0",
        "API_PORT": "8000",
        "LISTENER_METRICS_HOST": "0.0.0.0",
        "LISTENER_METRICS_PORT": "9464",
    }
    assert {name: values[name] for name in expected} == expected
    environment = yaml.safe_load(BACKEND.read_text())["services"]["api"]["environment"]
    assert {name: environment[name] for name in expected} == {name: f"${{{name}:-{v}}}" for name, v in expected.items()}


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.split("/")[0], p) for p in patterns)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context() -> None:
    patterns = ignore_patterns()
    for path in (".git", ".venv", ".devstack", ".env", ".env.local", "node_modules", ".pytest_cache", ".mypy_cache"):
        assert ignored(path, patterns), path


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = ignore_patterns()
    builder = stages()[0]
    sources = [src for i in builder if i.keyword == "COPY" for src in i.args.split()[:-1]]
    assert sources == ["pyproject.toml", "README.md", "service"]
    assert [src for src in sources if ignored(src, patterns)] == []
    assert all((ROOT / src).exists() for src in sources)
