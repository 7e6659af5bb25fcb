"""Only what pyproject.toml cannot say: every keras_cnns package found on disk, plus keras_cnns._shipped, the
repository's saved_models/ carried inside an installed copy (read-only; see keras_cnns.paths)."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["keras_cnns", "keras_cnns.*"]) + ["keras_cnns._shipped"],
      package_dir={"keras_cnns._shipped": "saved_models"})
