"""The package's import graph: a pure core, a leaf spec, no circle, and a daemon only the CLI imports.

Two views. The static one reads every module's import statements (those at module level, which run at
import time, and those inside functions, which run later) and checks the graph's rules. The dynamic
one imports each pure-core module alone, in a fresh interpreter, and looks at what ended up loaded:
that catches a heavy dependency reached through any chain of imports.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

SRC = REPO / "src"
PACKAGE = SRC / "autocurriculum"
HEAVY = ("jax", "tunix", "flax", "prometheus_client")
# the brief's pure core: the policy and controller faces and their parts, the contract, the rewards,
# the plateau tests, the data; and what they are built from
PURE_CORE = (
    "autocurriculum.policy", "autocurriculum.spec", "autocurriculum.plan", "autocurriculum.toml_table",
    "autocurriculum.policy_sections", "autocurriculum.phase_sections", "autocurriculum.curriculum_rules",
    "autocurriculum.json_values",
    "autocurriculum.contract", "autocurriculum.rewards", "autocurriculum.plateau",
    "autocurriculum.controller", "autocurriculum.controller_state", "autocurriculum.controller_requests",
    "autocurriculum.checks", "autocurriculum.vocabulary", "autocurriculum.observation", "autocurriculum.override",
    "autocurriculum.trainer", "autocurriculum.data", "autocurriculum.user_rewards", "autocurriculum.curriculum_figures",
    "autocurriculum.coordination", "autocurriculum.grading", "autocurriculum.reward_columns",
    "autocurriculum.metric_names",
)
# the daemon may be imported by the command line and by an in-process entry point (a notebook API)
DAEMON_IMPORTERS = {"autocurriculum.cli", "autocurriculum.notebook", "autocurriculum"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _target(name: str) -> str:
    """The module an imported dotted name lands in (a name imported from a module is that module)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str) -> tuple[set[str], set[str]]:
    """(package modules imported at module level, package modules imported anywhere) by `module`.

    A call with a module's dotted name as an argument (importlib.import_module) counts as an import.
    """
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top: set[str] = set()
    anywhere: set[str] = set()

    def visit(node: ast.AST, at_top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never runs
            found: list[str] = []
            if isinstance(child, ast.Import):
                found = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in child.names]
            elif isinstance(child, ast.Call):  # importlib.import_module("autocurriculum.x"), the CLI's routing
                found = [a.value for a in child.args if isinstance(a, ast.Constant) and a.value in MODULES]
            for name in found:
                if name == "autocurriculum" or name.startswith("autocurriculum."):
                    target = _target(name)
                    if target != module:
                        anywhere.add(target)
                        if at_top:
                            top.add(target)
            nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, at_top and not nested)

    visit(tree, True)
    return top, anywhere


GRAPH = {module: imports(module) for module in MODULES}


def test_the_graph_is_read_from_every_module() -> None:
    assert len(MODULES) > 30 and "autocurriculum.daemon.runner" in MODULES
    top, anywhere = GRAPH["autocurriculum.daemon.runner"]
    assert {"autocurriculum.wiring", "autocurriculum.daemon.boundary"} <= top
    assert "autocurriculum.exporter" in anywhere - top  # imported inside a function: lazily
    assert "autocurriculum.daemon" in GRAPH["autocurriculum.cli"][1] - GRAPH["autocurriculum.cli"][0]


def test_no_import_circle_at_import_time() -> None:
    done: set[str] = set()

    def walk(module: str, chain: tuple[str, ...]) -> None:
        if module in chain:
            raise AssertionError("import circle: " + " -> ".join([*chain[chain.index(module):], module]))
        if module in done:
            return
        for target in sorted(GRAPH[module][0]):
            walk(target, (*chain, module))
        done.add(module)

    for module in MODULES:
        walk(module, ())


def test_the_spec_imports_nothing_of_the_package() -> None:
    assert GRAPH["autocurriculum.spec"][1] == set()


def test_nothing_imports_the_daemon_but_the_command_line() -> None:
    importers = {module for module, (_, anywhere) in GRAPH.items()
                 if not module.startswith("autocurriculum.daemon")
                 and any(t == "autocurriculum.daemon" or t.startswith("autocurriculum.daemon.") for t in anywhere)}
    assert importers and importers <= DAEMON_IMPORTERS, importers


def test_only_the_tunix_adapter_imports_jax_or_tunix_at_all() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("autocurriculum.tunix_adapter"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{module}: {n}" for n in names if n.split(".")[0] in ("jax", "tunix", "flax", "qwix", "orbax")]
    assert offenders == []


LOADED = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"


@pytest.fixture(scope="module")
def loaded_alone() -> dict[str, set[str]]:
    """sys.modules after importing each module alone in a fresh interpreter (all started at once)."""
    checked = [*PURE_CORE, "autocurriculum.daemon", "autocurriculum.cli", "autocurriculum.wiring"]
    processes = {m: subprocess.Popen([sys.executable, "-c", LOADED, m], stdout=subprocess.PIPE, text=True)
                 for m in checked}
    out = {}
    for module, process in processes.items():
        stdout, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"importing {module} alone failed"
        out[module] = {name.split(".")[0] for name in json.loads(stdout)}
    return out


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_core_loads_no_jax_tunix_flax_or_prometheus(module: str, loaded_alone: dict[str, set[str]]) -> None:
    assert module in MODULES
    assert set(HEAVY) & loaded_alone[module] == set()


@pytest.mark.parametrize("module", ["autocurriculum.daemon", "autocurriculum.cli", "autocurriculum.wiring"])
def test_the_daemon_and_the_cli_load_no_jax_or_tunix_at_import(module: str, loaded_alone: dict[str, set[str]]) -> None:
    assert {"jax", "tunix", "flax"} & loaded_alone[module] == set()
