"""The project's Python keeps to 120-character lines, the width it is written to (read from the files; nothing is
imported)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = ("keras_cnns", "apps", "benchmarks", "tests")
MAX_LINE = 120


def _python_files():
    for folder in FOLDERS:
        for root, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            yield from (os.path.join(root, f) for f in sorted(files) if f.endswith(".py"))


def test_no_line_of_the_projects_python_is_over_120_characters():
    files = list(_python_files())
    assert len(files) > 100, "the walk found too few files to mean anything"
    long_lines = [f"{os.path.relpath(path, REPO)}:{number} ({len(line)} characters)"
                  for path in files
                  for number, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1)
                  if len(line) > MAX_LINE]
    assert long_lines == [], "lines over 120 characters:\n" + "\n".join(long_lines)
