"""Under CI, a skipped `postgres` or `ui` test is a failure: a missing binary must break CI, not hide the test.

`conftest.py` imports the hook, so pytest registers it for the whole suite. On a developer's machine
(no `CI` in the environment) those tests still skip and say why (`-rs` lists every skip with its reason).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

MUST_RUN_UNDER_CI = ("postgres", "ui")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: <reason>")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and under_ci():
        marks = [name for name in MUST_RUN_UNDER_CI if item.get_closest_marker(name) is not None]
        if marks:
            report.outcome = "failed"
            report.longrepr = (
                f"CI is set, so this {marks[0]} test must run, but it was skipped: {_reason(report.longrepr)}. "
                "Install what it needs (`make test-deps` as root installs Debian's postgresql, chromium and "
                "chromium-driver, and the [postgres,ui-tests] extras), or unset CI to let it skip.")
    return report
