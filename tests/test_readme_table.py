"""The README's model table is the one `apps/inspect.py --all` generates."""

import os

import pytest

from keras_cnns import anatomy

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_the_readme_model_table_is_current():
    try:
        section = anatomy.readme_section(README)
    except (OSError, ValueError) as err:  # the markers are gone: the table would silently go stale
        pytest.fail(f"README.md has lost its zoo table markers ({err}); restore them and run "
                    "`python apps/inspect.py --all --write-readme README.md`")
    assert section == anatomy.zoo_table("markdown"), (
        "README.md's model table is stale: run `python apps/inspect.py --all --write-readme README.md`")
