"""The house for many methods: the core and the command line name no method, the import
graph has no cycle, and every rule is defined once."""

import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from facecluster import registry

from helpers import REPO

SRC = REPO / "src" / "facecluster"


def code_tokens(path: Path) -> list[str]:
    """Names and string literals of a module's code: comments, docstrings and the names of
    third-party libraries in import statements left out (a library may share a method's
    name: ``import infomap as map_equation``)."""
    out, previous = [], tokenize.NEWLINE
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        library_import = tok.line.lstrip().startswith(("import ", "from ")) and " as " in tok.line
        if tok.type == tokenize.NAME and not library_import:
            out.append(tok.string)
        elif tok.type == tokenize.STRING and previous not in (tokenize.NEWLINE, tokenize.INDENT,
                                                              tokenize.DEDENT, tokenize.NL):
            out.append(tok.string)  # a string that is not a statement of its own (docstring)
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok.type
    return out


def test_the_core_and_the_command_line_name_no_method():
    # "auto" is the method that chooses among the others, and the word every setting uses
    # for "chosen on training data": the core uses it in that second sense only.
    names = [name for name in registry.names() if name != "auto"]
    assert {"adanets", "knn_threshold"} <= set(names)
    # The benchmark tools that read every method through the contract (``evaluate.py``
    # names HDBSCAN for the transfer issue's comparison; ``size_matched.py`` and
    # ``photos.py`` study named methods).
    tools = [REPO / "benchmarks" / name for name in ("beyond_hedge.py", "held_out_tolerance.py",
                                                     "report.py", "run.py", "scoreboard.py")]
    for path in sorted((SRC / "core").glob("*.py")) + [SRC / "cli.py",
                                                        *sorted((SRC / "report").glob("*.py")),
                                                        *tools]:
        tokens = code_tokens(path)
        for name in names:
            hits = [t for t in tokens if re.search(rf"\b{name}\b", t)]
            assert not hits, f"{path.relative_to(REPO)} names the method {name}: {hits[:3]}"


def test_the_import_graph_has_no_cycle_and_the_core_imports_no_method():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("facecluster", cache_dir=None, exclude_type_checking_imports=True)
    assert not graph.chain_exists(importer="facecluster.core", imported="facecluster.methods",
                                  as_packages=True)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for other in sorted(imports[module]):
            assert state.get(other) != 1, "import cycle: " + " -> ".join(path + [module, other])
            if other not in state:
                visit(other, path + [module])
        state[module] = 2

    for module in sorted(imports):
        if module not in state:
            visit(module, [])


def test_no_rule_is_defined_twice():
    names = []
    for path in sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]:
        names += re.findall(r"^rule (\w+):", path.read_text(), flags=re.M)
    assert names and len(names) == len(set(names)), names
    stages = [registry.get(m).rule_name(s) for m in registry.names()
              for s in registry.get(m).stages]
    assert len(stages) == len(set(stages)) and not set(stages) & set(names)


def test_declaring_every_method_imports_no_torch():
    """Every Snakemake parse declares the plan's methods and every stage runs in a process of
    its own: torch (seconds to import here) is imported by the stages that train or run a
    network, never by a method's declaration."""
    code = ("import sys\nfrom facecluster import registry\n"
            "for name in registry.names():\n    registry.get(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.strip() == "[]", out.stdout
