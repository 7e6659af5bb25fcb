"""The package's version: one line, read by keras_cnns/__init__.py, keras_cnns.metadata and pyproject.toml."""

__version__ = "0.1.0"
