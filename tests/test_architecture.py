"""The tree shows the architecture: imports point one way, read from the source (ast), nothing imported.

dipddpm (the science) imports neither ray, wandb nor the orchestrator; in the
orchestrator, sweep -> wandb_io -> report -> stats -> common -> dipddpm and never
back; no package has an import circle, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dipddpm", "orchestrator")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def imports_of(name: str, path: Path) -> set[str]:
    """Every module `name` imports, anywhere in it (absolute names; 'a.b.c' also counts as 'a.b')."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {m for m in imports_of(name, path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_package_has_an_import_circle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _imports_under(prefix: str) -> dict[str, set[str]]:
    return {name: imports_of(name, path) for name, path in MODULES.items()
            if name == prefix or name.startswith(prefix + ".")}


LAYERS = ("orchestrator.sweep", "orchestrator.wandb_io", "orchestrator.report", "orchestrator.stats",
          "orchestrator.common")  # top to bottom: each imports only the layers below it


@pytest.mark.parametrize("importer,forbidden", [
    ("dipddpm", ("ray", "wandb", "orchestrator")),
    ("orchestrator.wandb_io", ("orchestrator.sweep", "ray")),
    ("orchestrator.report", ("orchestrator.sweep", "orchestrator.wandb_io", "ray", "wandb")),
    ("orchestrator.stats", ("orchestrator.sweep", "orchestrator.wandb_io", "orchestrator.report", "ray", "wandb")),
    ("orchestrator.common", ("orchestrator.sweep", "orchestrator.wandb_io", "orchestrator.report",
                             "orchestrator.stats", "ray", "wandb")),
])
def test_imports_point_one_way(importer, forbidden):
    bad = {name: sorted(m for m in found if m.split(".")[0] in forbidden or any(m == f or m.startswith(f + ".")
                                                                              for f in forbidden))
           for name, found in _imports_under(importer).items()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_layers_are_exactly_the_stack():
    """Each layer imports only layers below it (the parametrised test above checks each one's bans; this one
    checks the bans are the whole stack, so a new layer cannot slip in unchecked)."""
    for i, layer in enumerate(LAYERS):
        above = set(LAYERS[:i])
        bad = {name: sorted(m for m in found if any(m == a or m.startswith(a + ".") for a in above))
               for name, found in _imports_under(layer).items()}
        assert {k: v for k, v in bad.items() if v} == {}, layer


def test_every_orchestrator_module_sits_in_a_layer():
    """Beside the layers only the entry points: the command line and the Python API it wraps."""
    loose = [n for n in MODULES if n.startswith("orchestrator.") and n.count(".") == 1
             and n not in ("orchestrator.cli", "orchestrator.api", "orchestrator.__main__", *LAYERS)]
    assert loose == []


def test_the_searcher_reads_the_statistics_not_the_report():
    assert not any(m.startswith("orchestrator.report") for m in imports_of("orchestrator.sweep.searcher",
                                                                          MODULES["orchestrator.sweep.searcher"]))


def test_the_orchestrator_tests_no_method_by_name():
    """The orchestrator asks a method (dipddpm.methods) for what it needs: at most 3 comparisons with a method's
    name, and no method module's private names."""
    import re

    tests = []
    for name, path in MODULES.items():
        if name.startswith("orchestrator"):
            text = path.read_text()
            tests += [(name, m.group(0)) for m in re.finditer(r"""[=!]=\s*["'](staged|hybrid)["']|["'](staged|hybrid)["']\s*[=!]=""", text)]
            assert not re.search(r"from dipddpm\.(staged|hybrid) import|dipddpm\.(staged|hybrid)\.", text), name
    assert len(tests) <= 3, tests


def test_the_entry_points_import_neither_torch_nor_ray_at_import_time():
    """`python -m orchestrator --help` and `import orchestrator` stay fast (no torch, no Ray)."""
    import subprocess
    import sys

    code = ("import sys, orchestrator, orchestrator.cli; "
            "print(sorted(m for m in ('torch', 'ray', 'wandb', 'diffusers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_importing_a_module_changes_nothing():
    """Importing any module of ours leaves the environment and logging as they were (the third-party
    packages it pulls in are imported first, so what they do on import is not counted against us)."""
    import json
    import subprocess
    import sys

    ours = sorted(MODULES)
    code = f"""
import json, logging, os, sys, warnings
import numpy, scipy.special, torch, ray, ray.tune, wandb, diffusers, skimage, yaml, rich  # theirs, first
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, estimate_sigma  # loaded lazily
def state():
    loggers = {{n: (l.level, len(l.handlers), len(l.filters), l.propagate, l.disabled)
               for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger)}}
    root = logging.getLogger()
    return dict(os.environ), loggers, (root.level, len(root.handlers)), len(warnings.filters)
before = state()
import importlib
for name in {ours!r}:
    if not name.endswith("__main__"):
        importlib.import_module(name)
after = state()
env = sorted(k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k))
logs = sorted(n for n in before[1] if before[1][n] != after[1].get(n))
print(json.dumps({{"env": env, "loggers": logs, "root": before[2] == after[2], "warnings": before[3] == after[3]}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"env": [], "loggers": [], "root": True, "warnings": True}, got
