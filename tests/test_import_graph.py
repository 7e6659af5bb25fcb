"""Imports flow down (issue 12): the model code and the leaf modules import nothing above them. Read from the
source with ast, so function-level imports count as much as module-level ones."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_cnns")

# what each part of the package may import from keras_cnns (a name and everything below it)
ALLOWED = {
    "layers": {"keras_cnns.layers"},
    "models": {"keras_cnns.models", "keras_cnns.layers", "keras_cnns.registry", "keras_cnns.features"},
    "registry.py": set(),
    "features.py": {"keras_cnns.registry"},
    "outputs.py": set(),
    "paths.py": set(),
    "version.py": set(),
    "metadata.py": {"keras_cnns.paths", "keras_cnns.version"},
    "data/idx.py": set(),
    "data/statistics.py": {"keras_cnns.paths"},
}


def _imported(path):
    """The keras_cnns modules a file imports ("from keras_cnns import layers" counts as keras_cnns.layers)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "keras_cnns"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "keras_cnns":
            if node.module == "keras_cnns":
                found |= {f"keras_cnns.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def _files(part):
    path = os.path.join(ROOT, part)
    if part.endswith(".py"):
        return [path]
    return [os.path.join(folder, f) for folder, _, names in os.walk(path) for f in names if f.endswith(".py")]


def _above(module, allowed):
    return not any(module == a or module.startswith(a + ".") for a in allowed)


def test_models_and_layers_and_the_leaf_modules_import_nothing_above_them():
    wrong = {}
    for part, allowed in ALLOWED.items():
        for path in _files(part):
            above = sorted(m for m in _imported(path) if _above(m, allowed))
            if above:
                wrong[os.path.relpath(path, ROOT)] = above
    assert wrong == {}


def test_the_reader_sees_function_level_imports_and_the_package_root():
    source = "def f():\n    import keras_cnns\n    from keras_cnns import data\n"
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "keras_cnns_import_probe.py")
    with open(path, "w") as f:
        f.write(source)
    try:
        assert _imported(path) == {"keras_cnns", "keras_cnns.data"}
        assert _above("keras_cnns", {"keras_cnns.layers"}) and _above("keras_cnns.data", {"keras_cnns.layers"})
    finally:
        os.remove(path)
