"""The CI settings: under CI a skipped postgres or ui test fails (ci_skips.py); Dagster deprecations raised from our
code fail the suite (pyproject.toml filterwarnings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill_pipeline import settings

INI = """\
[pytest]
addopts = -rs -p no:cacheprovider
markers =
    postgres: needs PostgreSQL
    ui: needs Chromium
"""
CONFTEST = "from distill_pipeline_tests.ci_skips import pytest_runtest_makereport  # noqa: F401\n"
TESTS = '''
import pytest

@pytest.fixture
def server():
    pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl)")

@pytest.mark.postgres
def test_needs_postgres(server):
    pass

@pytest.mark.ui
def test_needs_chromium():
    pytest.skip("/usr/bin/chromedriver not found")

def test_optional():
    pytest.skip("an ordinary skip")

@pytest.mark.ui
@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False
'''


def run_inner(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(settings.REPO_ROOT), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_under_ci_a_skipped_postgres_or_ui_test_fails_and_names_the_cause(tmp_path):
    inner = run_inner(tmp_path, ci="true")
    assert inner.returncode == 1, inner.stdout
    assert "1 failed, 1 skipped, 1 xfailed, 1 error" in inner.stdout  # a skip in a fixture: an error in setup
    assert "CI is set, so this postgres test must run, but it was skipped: no PostgreSQL server binaries" \
        in inner.stdout
    assert "CI is set, so this ui test must run, but it was skipped: /usr/bin/chromedriver not found" in inner.stdout
    assert "SKIPPED [1] test_inner.py" in inner.stdout and "an ordinary skip" in inner.stdout  # -rs


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_without_ci_they_skip_and_say_why(tmp_path, ci):
    inner = run_inner(tmp_path, ci=ci)
    assert inner.returncode == 0, inner.stdout
    assert "3 skipped, 1 xfailed" in inner.stdout
    assert "no PostgreSQL server binaries" in inner.stdout and "chromedriver not found" in inner.stdout


# -- warnings: Dagster's deprecations in our code fail the suite -------------------------------------------------

DEPRECATED_USE = '''
import warnings

import dagster as dg


def test_uses_a_deprecated_dagster_api():
    dg.AssetSelection.assets("a").sources()  # deprecated in Dagster 1.x: "Use AssetSelection.roots instead."


def test_a_third_party_deprecation_is_only_reported():
    warnings.warn("old thing", DeprecationWarning)
'''


def test_a_dagster_deprecation_warning_raised_from_our_code_fails_the_suite(tmp_path):
    """The suite's own pytest configuration (pyproject.toml), on a test module inside a `distill_pipeline*`
    package, as our tests and code are."""
    package = tmp_path / "distill_pipeline_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_probe.py").write_text(DEPRECATED_USE)
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(settings.REPO_ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(package)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "CI"})
    assert "1 failed, 1 passed" in inner.stdout, inner.stdout[-3000:]
    assert "DeprecationWarning: Function `AssetSelection.sources` is deprecated" in inner.stdout
    assert "old thing" in inner.stdout  # shown in the warnings summary, not an error
