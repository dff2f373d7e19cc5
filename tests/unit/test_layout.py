"""The import rules of docs/layout.md, checked: the listener never imports the API, core no vendor SDK."""

from __future__ import annotations

import ast
from pathlib import Path

import neiromatrius

PACKAGE = Path(neiromatrius.__file__).parent
VENDORS = {"supabase", "postgrest", "realtime", "openai", "httpx", "redis", "starlette", "uvicorn", "asyncpg"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against its package."""
    package = ".".join(("neiromatrius", *path.relative_to(PACKAGE).parent.parts))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
    return found


def imports_of(folder: str) -> dict[str, set[str]]:
    return {str(path.relative_to(PACKAGE)): imported_modules(path) for path in (PACKAGE / folder).rglob("*.py")}


def test_no_module_of_the_listener_imports_the_api() -> None:
    offending = {
        name: sorted(module for module in modules if module.startswith("neiromatrius.api"))
        for name, modules in imports_of("listener").items()
    }
    assert {name: modules for name, modules in offending.items() if modules} == {}


def test_core_imports_no_vendor_sdk() -> None:
    offending = {
        name: sorted(module for module in modules if module.split(".")[0] in VENDORS)
        for name, modules in imports_of("core").items()
    }
    assert {name: modules for name, modules in offending.items() if modules} == {}


def test_the_import_reader_sees_relative_imports() -> None:
    modules = imported_modules(PACKAGE / "listener" / "status.py")
    assert "neiromatrius.web.errors" in modules and "neiromatrius.config" in modules
