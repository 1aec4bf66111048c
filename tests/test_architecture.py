"""The apps depend on each other one way only, as docs/architecture.md draws it.

Every ``import`` and ``from … import`` in an app's modules (at the top or inside a function,
migrations aside) is read with ``ast``; an import of a project app the table below does not
allow fails the test with the file and line, and so does a cycle.
"""

import ast
from graphlib import CycleError, TopologicalSorter

import pytest

from .helpers.project import BASE_DIR

# Which project apps each app may import. Lower layers first; see docs/architecture.md.
ALLOWED = {
    "twilio_client": set(),
    "contactcenter": {"twilio_client"},
    "audit": {"contactcenter"},
    "privacy": {"contactcenter", "audit"},
    "consent": {"contactcenter", "privacy", "audit"},
    "recordings": {"contactcenter", "privacy", "consent", "audit", "twilio_client"},
    "training": {"contactcenter", "privacy", "consent", "recordings", "audit"},
    "portal": {"contactcenter", "privacy", "consent", "recordings", "audit", "twilio_client"},
    "telephony": {"contactcenter", "privacy", "consent", "recordings", "audit", "twilio_client"},
    "demo": {
        "contactcenter",
        "privacy",
        "consent",
        "recordings",
        "audit",
        "training",
        "portal",
        "telephony",
        "twilio_client",
        "staff",
        "incidents",
    },
    "staff": {"contactcenter", "audit"},
    "incidents": {"contactcenter", "privacy", "consent", "recordings", "audit", "twilio_client"},
    "backoffice": {
        "contactcenter",
        "privacy",
        "consent",
        "recordings",
        "audit",
        "training",
        "portal",
        "incidents",
    },
}
APPS = set(ALLOWED)


def imports_of(app):
    """``(file, line, imported app)`` for every import of another project app in ``app``."""
    found = []
    for path in sorted((BASE_DIR / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in APPS and top != app:
                    found.append((path.relative_to(BASE_DIR), node.lineno, top))
    return found


RELATIONS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


def model_references_of(app):
    """``(file, line, app)`` for every relation to another app's model named by a string."""
    found = []
    for path in sorted((BASE_DIR / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            target = node.args[0]
            if name in RELATIONS and isinstance(target, ast.Constant) and "." in str(target.value):
                other = str(target.value).split(".")[0]
                if other in APPS and other != app:
                    found.append((path.relative_to(BASE_DIR), node.lineno, other))
    return found


def test_every_app_of_the_project_is_in_the_table():
    packages = {
        path.parent.name
        for path in BASE_DIR.glob("*/__init__.py")
        if (path.parent / "apps.py").exists() or path.parent.name == "twilio_client"
    }
    assert packages == APPS


@pytest.mark.parametrize("app", sorted(APPS))
def test_an_app_imports_only_what_it_may(app):
    forbidden = [
        f"{path}:{line} imports {imported}"
        for path, line, imported in imports_of(app)
        if imported not in ALLOWED[app]
    ]
    assert forbidden == []


@pytest.mark.parametrize("app", sorted(APPS))
def test_a_model_refers_only_to_models_it_may_import(app):
    forbidden = [
        f"{path}:{line} refers to a model of {other}"
        for path, line, other in model_references_of(app)
        if other not in ALLOWED[app]
    ]
    assert forbidden == []


def test_the_allowed_graph_has_no_cycle():
    try:
        order = list(TopologicalSorter(ALLOWED).static_order())
    except CycleError as cycle:  # pragma: no cover - the message is the failure
        pytest.fail(f"cycle in the allowed dependencies: {cycle.args[1]}")
    assert order[0] == "twilio_client"
    # Nothing imports demo or backoffice: both sit on top.
    assert order[-1] in {"demo", "backoffice"}
    assert [app for app, deps in ALLOWED.items() if deps & {"demo", "backoffice"}] == []


def test_no_domain_app_imports_the_twilio_edge():
    edge_users = {
        app for app in APPS for _, _, imported in imports_of(app) if imported == "telephony"
    }
    assert edge_users <= {"demo"}


def test_the_twilio_client_imports_no_project_code():
    assert imports_of("twilio_client") == []


def test_the_core_imports_no_domain_app():
    assert {imported for _, _, imported in imports_of("contactcenter")} <= {"twilio_client"}


def test_the_table_is_the_one_in_the_architecture_document():
    """docs/architecture.md lists the same "may import" line for every app."""
    text = (BASE_DIR / "docs" / "architecture.md").read_text(encoding="utf-8")
    for app, allowed in ALLOWED.items():
        line = f"| `{app}` | " + (", ".join(f"`{name}`" for name in sorted(allowed)) or "—") + " |"
        assert line in text, line
