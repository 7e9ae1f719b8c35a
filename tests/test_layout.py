"""The package's shape: layers import one way, no cycles, small modules and functions, one
registry of names, a cheap top-level import (docs/architecture.md, "Package layers")."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import spinn_utils
from spinn_utils.core.registry import (
    FIGURES,
    LABELS,
    METRICS,
    MODEL_VARIANTS,
    PREDICTIONS_FILE,
    VARIANTS,
    names,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "spinn_utils"
LAYERS = ("core", "data", "model", "training", "compression", "benchmark", "evaluation",
          "reporting", "pipeline")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def rank(module: str) -> int:
    """Layer index; modules at the package root (the public API, entry points) sit on top."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def imports_of(module: str) -> set[str]:
    """Package modules ``module`` imports anywhere in its file (functions and TYPE_CHECKING too)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        # The most specific package module each import names (``from .x import y`` -> x.y or x).
        for cand in candidates:
            if cand in MODULES and cand != module:
                found.add(cand)
                break
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_layout_test_sees_the_whole_package():
    assert {m.split(".")[1] for m in MODULES if m.count(".") >= 1} >= set(LAYERS)
    assert GRAPH["spinn_utils.model.physics"] >= {"spinn_utils.data.dataset", "spinn_utils.core.errors"}


def test_no_upward_import():
    upward = [f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets if rank(t) > rank(m)]
    assert not upward, "a lower layer imports a higher one:\n" + "\n".join(upward)


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [m, t]))
            elif t not in state:
                visit(t, stack + [m])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, [])
    assert not cycles, cycles


def test_no_lazy_import_of_the_package_itself():
    """Imports inside functions hid cycles before; package modules are imported at the top."""
    lazy = []
    for m, path in MODULES.items():
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("spinn_utils")):
                        lazy.append(f"{m}:{node.lineno}")
    assert not lazy


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_are_small(module):
    text = MODULES[module].read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{module}: split it by responsibility"
    long = [f"{fn.name} ({fn.end_lineno - fn.lineno + 1} lines)"
            for fn in ast.walk(ast.parse(text)) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            and fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{module}: {long}"


def _code_cells(notebook: Path) -> str:
    """A notebook's code cells as one Python source (IPython magics dropped)."""
    cells = json.loads(notebook.read_text())["cells"]
    code = ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return "\n".join(line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def test_names_are_spelled_only_in_the_registry():
    """Model, checkpoint, metrics, figure and label names come from core.registry, in the package,
    the tests and the notebooks' code cells ("dense" and the figure name "parameters" are also
    plain words, so they are not searched for; nor are the names of spinn-utils 0.1 files, which
    the registry's LEGACY tables and the rename tests spell on purpose)."""
    spelled = {*names(METRICS), *names(VARIANTS), *names(FIGURES), *LABELS.values(), PREDICTIONS_FILE,
               *(f"{v}.pt" for v in names(VARIANTS)), *(f"{v}.onnx" for v in names(VARIANTS))}
    spelled -= {VARIANTS.dense, FIGURES.parameters}
    sources = {m: path.read_text() for m, path in MODULES.items()
               if m not in ("spinn_utils", "spinn_utils.core.registry")}  # the API table names functions
    sources |= {f"tests/{p.name}": p.read_text() for p in (ROOT / "tests").glob("test_*.py")}
    sources |= {f"notebooks/{p.name}": _code_cells(p) for p in (ROOT / "notebooks").glob("*.ipynb")}
    found = []
    for where, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in spelled:
                found.append(f"{where}:{node.lineno} {node.value!r}")
    assert not found


def test_registry_names_are_unique():
    for group in (METRICS, VARIANTS, FIGURES):
        assert len(set(names(group))) == len(names(group)), group
    assert [v.name for v in MODEL_VARIANTS] == list(names(VARIANTS))  # one record per variant, in order
    for field in ("label", "short", "colour"):
        assert len({getattr(v, field) for v in MODEL_VARIANTS}) == len(MODEL_VARIANTS), field
    assert all(v.reference in names(VARIANTS) for v in MODEL_VARIANTS)
    assert all((v.export is None) == (v.runtime == "torch") for v in MODEL_VARIANTS)


def test_public_api_resolves_and_import_stays_light():
    for name in spinn_utils.__all__:
        assert getattr(spinn_utils, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        spinn_utils.nope  # noqa: B018
    code = "import sys, spinn_utils; print('torch' in sys.modules, spinn_utils.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    torch_loaded, version = out.stdout.split()
    assert torch_loaded == "False"  # ~0.9 s of torch import is paid only by what needs it
    assert version != "0+unknown"  # read from the installed package's metadata


def test_code_cites_only_files_in_the_repository():
    """Docstrings, comments and guides point at Markdown files a person who clones the repo has."""
    cited = set()
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py"), ROOT / "run_all.py",
                 ROOT / "README.md", ROOT / "COLAB_WORKFLOW.md", ROOT / "results" / "README.md",
                 *(ROOT / "docs").glob("*.md"), *(ROOT / "notebooks").glob("*.ipynb")]:
        cited |= set(re.findall(r"\b(?:docs/[\w-]+|[A-Z][A-Z0-9_-]+)\.md\b", path.read_text()))
    missing = sorted(c for c in cited if not ((ROOT / c).is_file() or (ROOT / "docs" / c).is_file()))
    assert not missing, missing
