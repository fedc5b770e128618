"""The emulator stands on the vendors' documents, never on our connectors: nothing in
``ps_sandbox`` imports ``ps_pipelines``, directly or through anything it loads."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import ps_sandbox

PACKAGE = Path(ps_sandbox.__file__).parent


def test_no_module_of_the_emulator_names_the_pipeline() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        offenders += [f"{path.relative_to(PACKAGE)}: {name}" for name in imported
                      if name.split(".")[0] == "ps_pipelines"]
    assert offenders == []


def test_loading_the_whole_emulator_loads_no_pipeline_module() -> None:
    modules = sorted(f"ps_sandbox.{info.name}" for info in pkgutil.walk_packages([str(PACKAGE)])
                     if info.name != "__main__")
    probe = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ps_pipelines'))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert len(modules) > 10
    assert loaded.strip() == "[]"
