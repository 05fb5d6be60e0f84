"""The plugin's own tests. The ``wecom_mock`` fixture comes from the installed wheel's
``pytest11`` entry point (nothing is imported here); ``pytester`` runs inner sessions."""

import importlib
import os

import pytest

pytest_plugins = ["pytester"]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(REPO, "crates", "wecom-material-mock", "examples", "clients")


def need(module, install):
    """Imports ``module``; when it is missing, the test fails under CI and is skipped
    otherwise (with the install command)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("%s is missing and CI is set: %s" % (module, install))
        pytest.skip("%s is missing: %s" % (module, install), allow_module_level=True)
