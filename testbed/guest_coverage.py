"""Measure every zferry run inside the test VM (copied there as the guest checkout's
src/sitecustomize.py by tests/integration/conftest.py when ZFERRY_COVERAGE=1).

Every `PYTHONPATH=src python3 -m zferry ...` in the guest checkout imports this first, so runs
started by `Vm.zferry` and by hand in `vm.sh` scripts (as root or as another user) are measured
alike. coverage.py itself is the host venv's package, copied to .coverage-lib; each process
writes its own data file to .coverage-data (world-writable), which the fixture copies back to
this machine for `coverage combine`. Nothing here exists outside this one guest checkout.
"""

import atexit
import os
import sys

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(os.path.join(_CHECKOUT, ".coverage-lib"))
try:
    import coverage
except ImportError:  # the checkout was synced again without coverage: measure nothing
    coverage = None  # type: ignore[assignment]

if coverage is not None:
    _measure = coverage.Coverage(
        data_file=os.path.join(_CHECKOUT, ".coverage-data", ".coverage"),
        data_suffix=True,
        config_file=os.path.join(_CHECKOUT, "pyproject.toml"),
    )
    _measure.start()

    def _save() -> None:
        _measure.stop()
        _measure.save()

    atexit.register(_save)
