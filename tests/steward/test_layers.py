"""The layers of docs/architecture.md, fenced: an app imports only the apps below it.

Read from the source (AST), without importing it. Bottom to top:

    steward (framework: settings, errors, API plumbing, identity, registry)
    ledger (audit chain, history)  <  accounts (API tokens, token auth, OIDC)  <  connectors
    <  catalog  <  lineage  <  sources (crawled sources)  <  governance  <  workspaces  <  compliance  <  frontend
    <  interop (Apache Atlas)

``steward/urls.py`` and ``steward/wsgi.py`` are the composition root and may import any app. A lower app that
needs an answer from a higher one asks ``steward.registry`` (the higher app registers in ``AppConfig.ready``)
or sends a signal the higher app connects to.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS = [
    "steward",
    "ledger",
    "accounts",
    "connectors",
    "catalog",
    "lineage",
    "sources",
    "governance",
    "workspaces",
    "compliance",
    "frontend",
    "interop",
]
LEVEL = {app: i for i, app in enumerate(LAYERS)}

# Modules that wire the whole service together; they sit above every layer.
COMPOSITION_ROOT = {"steward/urls.py", "steward/wsgi.py"}

# Imports inside functions that cross apps, outside ``apps.py`` (where ``AppConfig.ready`` must import lazily).
# Each entry: (file, imported module) -> why it cannot be a module-level import. Keep this empty if you can.
FUNCTION_LEVEL_ALLOWED: dict[tuple[str, str], str] = {}

# Only settings name the OIDC backend (by dotted path): no read path pulls it in.
OIDC_BACKEND = "accounts.oidc"


def _app_of(module: str) -> str | None:
    top = module.split(".", 1)[0]
    return top if top in LEVEL else None


def _source_files() -> list[Path]:
    files = []
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" in rel or "node_modules" in rel:
                continue
            files.append(path)
    return files


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str, bool]]:
    """Every absolute import in the module: (node, module, inside a function); ``from a import b`` gives a."""
    found: list[tuple[ast.stmt, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((child, alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child, child.module, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _violations() -> tuple[list[str], list[str], list[str]]:
    upward, lazy, oidc = [], [], []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        app = rel.split("/", 1)[0]
        for node, module, in_function in _imports(ast.parse(path.read_text(), rel)):
            target = _app_of(module)
            names = [f"{module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else []
            if any(m == OIDC_BACKEND or m.startswith(OIDC_BACKEND + ".") for m in (module, *names)):
                if app != "accounts":
                    oidc.append(f"{rel}:{node.lineno} imports {module}")
            if target is None or target == app:
                continue
            if rel not in COMPOSITION_ROOT and LEVEL[target] > LEVEL[app]:
                upward.append(f"{rel}:{node.lineno} ({app}) imports {module} ({target}, a higher layer)")
            if in_function and not rel.endswith("/apps.py") and (rel, module) not in FUNCTION_LEVEL_ALLOWED:
                lazy.append(f"{rel}:{node.lineno} imports {module} inside a function")
    return upward, lazy, oidc


def test_no_app_imports_a_higher_layer():
    upward, _, _ = _violations()
    assert upward == [], "Upward imports (use steward.registry or a signal instead):\n" + "\n".join(upward)


def test_no_function_level_imports_across_apps():
    _, lazy, _ = _violations()
    assert lazy == [], "Cross-app imports hidden in functions (import at module level):\n" + "\n".join(lazy)


def test_only_settings_name_the_oidc_backend():
    _, _, oidc = _violations()
    assert oidc == [], "\n".join(oidc)


def test_every_installed_steward_app_has_a_layer_and_settings_list_them_bottom_first():
    from django.conf import settings

    ours = [app for app in settings.INSTALLED_APPS if (ROOT / app / "apps.py").exists()]
    assert set(ours) == set(LAYERS) - {"steward"}
    assert ours == sorted(ours, key=LEVEL.__getitem__)


@pytest.mark.parametrize(
    ("app", "module", "inside"),
    [
        ("catalog", "lineage.selectors", False),
        ("ledger", "catalog.models", False),
        ("lineage", "governance.models", True),
    ],
)
def test_the_fence_catches_what_it_should(tmp_path, monkeypatch, app, module, inside):
    """The checker itself: an upward import, at module level or in a function, is reported."""
    source = f"def f():\n    import {module}\n" if inside else f"import {module}\n"
    fake = tmp_path / app / "bad.py"
    fake.parent.mkdir()
    fake.write_text(source)
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    upward, lazy, _ = _violations()
    assert any(line.startswith(f"{app}/bad.py") for line in upward)
    assert bool(lazy) == inside


def test_the_fence_catches_a_read_path_pulling_in_the_oidc_backend(tmp_path, monkeypatch):
    fake = tmp_path / "catalog" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("from accounts import oidc\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert _violations()[2] == ["catalog/bad.py:1 imports accounts"]


def test_a_running_service_with_oidc_off_never_loads_the_oidc_backend(tmp_path):
    """In a fresh interpreter, Django set up and catalog and lineage reads imported: no OIDC backend module
    (before, ``governance.identity`` defined it, so every read of roles pulled in mozilla_django_oidc.auth)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "steward.settings.base", "STEWARD_STATE_DIR": str(tmp_path)}
    code = (
        "import sys, django; django.setup();"
        "import catalog.selectors, catalog.search.backends.database, lineage.selectors;"
        "print(sorted(m for m in sys.modules if m in ('accounts.oidc', 'mozilla_django_oidc.auth')))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
