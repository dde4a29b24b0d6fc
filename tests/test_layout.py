"""The package's shape, as the README's "Layout" section draws it: every module in a room (a layer
folder) or the face; imports run from a room to its own or lower rooms only, with no circle (lazy
imports inside functions included, type-only imports excluded); no module reaches another's
private members; no module grows past ~400 lines; tests/ mirrors the rooms."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hyenadna"
# The package's rooms, lowest first: a module imports from its own room or from rooms below it,
# never above. The face (version, errors, config at the bottom; cli and the package itself at the top) is
# the only code outside a room.
LAYERS = [
    "version",
    "errors",
    "config",
    "checks",  # refusals of values, devices and dtypes before work starts
    "data",  # the tokenizer and genomic formats: FASTA, BAM, BED, labels, VCF, data modules
    "ops",  # pure functions: the reference, every fast path, the dispatcher
    "modules",  # nn layers: filter, operator, block, pooling
    "io",  # our save format, released and -hf imports, hub, bundled, atomic files, file plans
    "inference",  # batching, tiling, masks, likelihood, embedding, scoring, generation, sharding
    "model",  # HyenaDNA and load()
    "heads",  # task heads, the task model, the CNN baseline
    "analysis",  # attributions, motifs, Markov chains, metrics, baselines, plots
    "training",  # Lightning modules, options, optimiser, trainer
    "tasks",  # the task suite's builders
    "pipelines",  # one module (or folder) per command
    "",  # hyenadna/__init__.py: the public API
    "cli",
]
# rooms under the model that may read only the tokenizer of data/ (no pysam, no Lightning)
TOKENIZER_ONLY = ("ops", "modules", "inference", "model")


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports at run time."""
    paths = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text())
        type_only = {
            id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }  # fmt: skip
        targets = set()
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hyenadna"):
                targets |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def test_no_import_circle():
    graph = module_imports()
    assert "hyenadna.model.hyena_dna" in graph and "hyenadna.ops.dispatch" in graph["hyenadna.model.hyena_dna"]

    def reaches(start: str, goal: str) -> list[str] | None:
        seen, frontier = {start}, [[start]]
        while frontier:
            path = frontier.pop()
            for nxt in graph[path[-1]]:
                if nxt == goal:
                    return [*path, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append([*path, nxt])
        return None

    circles = [reaches(name, name) for name in graph]
    assert not any(circles), next(c for c in circles if c)


def test_every_module_lives_in_a_room_or_the_face():
    top = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert top == ["__init__", "config", "errors", "version"], top
    rooms = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file())
    assert sorted(rooms) == sorted(name for name in LAYERS if name not in ("", "version", "errors", "config")), rooms


def test_rooms_import_only_their_own_or_lower_ones():
    order = {name: rank for rank, name in enumerate(LAYERS)}
    bad = []
    for name, imported in module_imports().items():
        for target in imported:
            if order[room(target)] > order[room(name)]:
                bad.append(f"{name} -> {target}")
            elif room(name) in TOKENIZER_ONLY and room(target) == "data" and target != "hyenadna.data.tokenizer":
                bad.append(f"{name} -> {target} (only the tokenizer of data/ below the model)")
    assert not bad, "\n".join(sorted(bad))


def test_no_module_past_about_400_lines():
    sizes = {path.relative_to(PACKAGE): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 420, sorted(sizes.items(), key=lambda item: -item[1])[:3]


ROOT = PACKAGE.parent
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml", "huggingface_hub": "huggingface_hub"}


def declared() -> tuple[set[str], dict[str, set[str]]]:
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[<>=;! ]", r, maxsplit=1)[0].lower().replace("-", "_") for r in requirements}

    extras = {name: names(reqs) for name, reqs in project["optional-dependencies"].items()}
    return names(project["dependencies"]), extras


def test_every_imported_package_is_declared():
    import sys

    required, extras = declared()
    optional = {
        "huggingface_hub": "hub",
        "triton": "triton",
        "matplotlib": "plot",
        "logomaker": "plot",
        "pandas": "plot",
    }  # imported lazily, behind a clear error
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "hyenadna"}
    for name in sorted(third_party):
        dist = DISTRIBUTIONS.get(name, name).lower().replace("-", "_")
        if name in optional:
            assert dist in extras[optional[name]], f"{name} is not in the [{optional[name]}] extra"
        else:
            assert dist in required, f"{name} is imported but not declared in pyproject.toml"


def test_license_type_marker_and_the_python_ci_runs():
    import re
    import sys
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert (PACKAGE / "py.typed").is_file()
    oldest = tuple(int(v) for v in re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"]).groups())
    # CI runs this suite: on the oldest Python the package claims to support
    assert sys.version_info[:2] == oldest, f"requires-python {project['requires-python']} but CI runs {sys.version}"


def test_no_module_reaches_a_private_member_of_another_modules_object():
    """``obj._name`` where ``_name`` is a private attribute or method that only another module of
    the package defines (its class's business, not ours): use or add a public method instead."""

    def private_names(tree: ast.AST) -> set[str]:
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("_"):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
        return {name for name in names if name.startswith("_") and not name.startswith("__")}

    import torch

    torchs = set(dir(torch.Tensor)) | set(dir(torch.nn.Module))  # torch's own, such as a tensor's _version
    trees = {path: ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}
    defined = {path: private_names(tree) for path, tree in trees.items()}
    bad = []
    for path, tree in trees.items():
        elsewhere = set().union(*(names for other, names in defined.items() if other != path)) - defined[path] - torchs
        for node in ast.walk(tree):
            owner = ast.unparse(node.value) if isinstance(node, ast.Attribute) else ""
            if isinstance(node, ast.Attribute) and node.attr in elsewhere and owner not in ("self", "cls"):
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "\n".join(bad)


TESTS = ROOT / "tests"
# test files named for a behaviour that spans a room's modules, and what each covers
BY_BEHAVIOUR = {
    "analysis/test_baselines.py": "kmer_baseline, markov_baseline and the CNN, trained and compared",
    "modules/test_chunked.py": "the chunked driver: filter_bank's spectra and block's chunk-by-chunk forward",
    "ops/test_paths.py": "every path the dispatcher can choose, forward and backward, against reference.py",
    "pipelines/test_bad_input.py": "every command given damaged or wrong input files",
    "pipelines/test_distributed.py": "the commands on several processes",
    "pipelines/test_fault_injection.py": "the commands killed or failing mid-write",
    "training/test_run_folders.py": "a training run's folder: trainer.py with io/atomic's run folders",
}


def test_tests_mirror_the_rooms_and_are_named_after_what_they_test():
    """tests/ROOM/test_NAME[_hostile|_command].py tests hyenadna/ROOM/NAME (a module, a package
    such as pipelines/score/, or a Triton kernel module); tests/ROOM/test_ROOM.py the room as a
    whole; the few files named for a behaviour say what they cover above; tests/test_NAME_benchmark.py
    a script of benchmarks/ (not a room)."""
    rooms = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    folders = {path.name for path in TESTS.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))}
    assert folders <= rooms, sorted(folders - rooms)
    unnamed = []
    for path in sorted(TESTS.glob("*/test_*.py")):
        room, name = path.parent.name, path.stem.removeprefix("test_")
        candidates = {name, name.removesuffix("_hostile"), name.removesuffix("_command")}
        found = name == room or any(
            (PACKAGE / room / f"{c}.py").is_file() or (PACKAGE / room / c / "__init__.py").is_file()
            or (PACKAGE / room / "triton" / f"{c}.py").is_file()
            for c in candidates
        )  # fmt: skip
        if not found and f"{room}/{path.name}" not in BY_BEHAVIOUR:
            unnamed.append(f"{room}/{path.name}")
    assert not unnamed, unnamed
    top = sorted(p.name for p in TESTS.glob("test_*.py") if not p.name.endswith("_benchmark.py"))
    assert top == ["test_layout.py"], "tests/ holds the layout test and tests of benchmarks/ scripts alone"
