"""pytest setup for the Python package tests: tenflower is imported from the build tree
(PYTHONPATH set by the ctest entry python_pytest); torch and numpy are the references."""
import os
import sys

import pytest

os.environ.setdefault("TFW_NUM_THREADS", "2")

# tests/py/*_check.py are scripts run by other ctest entries, not pytest modules
collect_ignore_glob = ["*_check.py", "report_render.py"]


def pytest_report_header(config):
    import tenflower
    return f"tenflower {tenflower.__version__} from {os.path.dirname(tenflower.__file__)}"


SANITIZED = os.environ.get("TFW_PY_SANITIZE") == "1"


@pytest.fixture(autouse=True)
def _seed():
    import tenflower
    tenflower.manual_seed(0)
    yield
