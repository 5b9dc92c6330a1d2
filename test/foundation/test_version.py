"""One version: `sim2sg_core.__version__` is the source; pyproject.toml reads it and package.xml repeats it."""

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import sim2sg_core

REPO = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib
    tomllib = None


def _literal_version() -> str:
    """The literal assigned in sim2sg_core/__init__.py (what setuptools reads statically)."""
    tree = ast.parse((REPO / "sim2sg_core" / "__init__.py").read_text(encoding="utf-8"))
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    ]
    assert len(values) == 1, "sim2sg_core/__init__.py must assign __version__ exactly once, to a string literal"
    return values[0]


def test_package_xml_version_equals_sim2sg_core_version():
    version = ET.parse(REPO / "package.xml").getroot().findtext("version")
    assert version == sim2sg_core.__version__ == _literal_version(), (
        f"package.xml says {version!r}, sim2sg_core/__init__.py says {_literal_version()!r}: change both together"
    )


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_pyproject_takes_its_version_from_sim2sg_core():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert "version" not in project, "pyproject.toml must not repeat the version: it is dynamic"
    assert project["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sim2sg_core.__version__"}


def test_setup_py_sets_no_version():
    """setup.py only adds data files; a version= there would be a second source (and ignored by setuptools)."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    keywords = [
        kw.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
        for kw in node.keywords
    ]
    assert keywords and "version" not in keywords and "name" not in keywords
