"""The Dagster UI end to end: the bundled pipeline, the webserver, and headless Chromium.

The module fixture materializes the pipeline with the tiny model into a temporary DAGSTER_HOME
(two bundled days, then training through the model card, with the lenient gate of
test_end_to_end.py), starts `dagster-webserver` on 127.0.0.1 against that home, and drives
Debian's chromium through /usr/bin/chromedriver (never a downloaded browser). The tests check what
a person would look for: the lineage from `teacher_traces` to `routing_policy` on the asset graph,
and the report's headline figures on the `student_eval_report` page. Screenshots go to
test-artifacts/ui/. Skipped, with the reason, where chromium or chromedriver is missing; `make test`
installs Debian's chromium and chromium-driver when it runs as root (as CI does).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from distill_pipeline import settings
from distill_pipeline.core.report import readable
from distill_pipeline.definitions import ASSET_CHECKS, ASSETS
from distill_pipeline.defs.automation import CAPTURE_ASSETS, RETRAIN_ASSETS
from distill_pipeline.defs.evaluate import HEADLINE_KEYS

pytestmark = pytest.mark.ui

CHROMIUM = Path(os.environ.get("DISTILL_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("DISTILL_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = settings.REPO_ROOT / "test-artifacts" / "ui"
DAYS = ["2026-10-01", "2026-10-02"]
# The tiny model cannot beat the teacher; open the gate so the whole chain runs (as test_end_to_end.py does), and
# evaluate a handful of examples: this test is about what the UI shows, not about the scores.
LENIENT_GATE = {"ops": {"student_eval_report": {"config": {
    "tolerance": 1.0, "max_teacher_share": 1.0, "intent_floor": 0.0, "min_schema_pass_rate": 0.0,
    "max_examples": 4, "base_examples": 2, "general_examples": 2, "structured_ratio": 0.0}}}}
LINEAGE = ["teacher_traces", "trace_evals", "pass_cases", "eval_holdout", "training_mix", "fine_tune_job",
           "student_model", "student_eval_report", "routing_policy"]
ALL_ASSETS = LINEAGE + ["general_examples", "model_card"]
SERVER_START_S = 180  # the webserver imports Dagster, then loads the code location in a subprocess
PAGE_WAIT_S = 120
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
                  "--window-size=1600,1400", "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Materialized:
    home: Path
    storage_root: Path
    report: dict  # student_eval_report's metadata values, as recorded


def dagster_home(root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (home / ".nux").mkdir()  # the UI's "join the community" dialog counts as seen: it would cover the pictures
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    return home


def materialize_pipeline(home: Path, storage: Path) -> Materialized:
    """Two days of capture and curate, then training through the model card, into a real on-disk instance."""
    from distill_pipeline.defs.resources import OpenAIResource, PipelineSettings

    pipeline = PipelineSettings(storage_root=str(storage), traces_dir=str(settings.DEFAULT_TRACES_DIR),
                                task_spec=str(settings.DEFAULT_TASK_SPEC),
                                general_examples=str(settings.DEFAULT_GENERAL_EXAMPLES), preset="tiny")
    resources = {"pipeline": pipeline, "openai": OpenAIResource()}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for day in DAYS:
            result = dg.materialize(ASSETS + ASSET_CHECKS, partition_key=day, resources=resources,
                                    instance=instance, selection=CAPTURE_ASSETS)
            assert result.success
        result = dg.materialize(ASSETS + ASSET_CHECKS, resources=resources, instance=instance,
                                selection=RETRAIN_ASSETS, run_config=LENIENT_GATE)
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("student_eval_report"))
        report = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    return Materialized(home, storage, report)


def wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"dagster-webserver did not answer {url} within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[tuple[str, Materialized]]:
    """The webserver's base URL, serving a freshly materialized pipeline."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} not found: install Debian's {package} package (`make test` does, as root)")
    pytest.importorskip("selenium", reason="selenium is not installed: pip install '.[ui-tests]'")
    pytest.importorskip("peft", reason="the tiny trainer needs the [local] extra")

    root = tmp_path_factory.mktemp("ui")
    home, storage = dagster_home(root), root / "storage"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "webserver.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # the UI never needs a key
    env.update(DAGSTER_HOME=str(home), DISTILL_STORAGE_ROOT=str(storage), DISTILL_PRESET="tiny")
    webserver = Path(sys.executable).with_name("dagster-webserver")
    command = [str(webserver)] if webserver.exists() else [sys.executable, "-m", "dagster_webserver"]
    command += ["-m", "distill_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)]
    # The webserver starts (imports, loads the code location) while the pipeline runs here: it reads the same
    # DAGSTER_HOME, and every page below is opened after the last materialization.
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=settings.REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        materialized = materialize_pipeline(home, storage)
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{base}/server_info", process, log, SERVER_START_S)
        yield base, materialized
    finally:
        # The webserver and the code server it started share the session (process group) made above.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(ui, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(ARTIFACTS / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


# The text of every leaf element drawn inside the asset graph's SVG (node labels, group names), and whether the
# node around it is drawn as materialized (Dagster 1.13 colours those nodes green).
GRAPH_LABELS_JS = """return Array.from(document.querySelectorAll('svg *'))
    .filter(e => e.children.length === 0 && e.textContent.trim()).map(e => e.textContent.trim());"""
GREEN_LABELS_JS = """return Array.from(document.querySelectorAll('svg *'))
    .filter(e => e.children.length === 0 && e.textContent.trim() && e.closest('[style*="green"]'))
    .map(e => e.textContent.trim());"""


def labelled(labels: list[str], name: str) -> bool:
    """A node label shows `name`, whole or middle-truncated as the zoomed-out graph draws it (student_ev…_report)."""
    for label in labels:
        head, ellipsis, tail = label.partition("…")
        if label == name or (ellipsis and name.startswith(head) and name.endswith(tail) and len(name) > len(label)):
            return True
    return False


def wait_until(driver, what: str, condition, timeout_s: float = PAGE_WAIT_S):
    """Wait (bounded) until condition(driver) is truthy; on timeout fail with what was expected and the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=1).until(condition)
    except TimeoutException:
        text = driver.find_element(By.TAG_NAME, "body").text
        picture = ARTIFACTS / f"timeout-{time.strftime('%H%M%S')}.png"
        driver.save_screenshot(str(picture))
        pytest.fail(f"{driver.current_url}: {what} not seen within {timeout_s:.0f} s (screenshot {picture}); "
                    f"the page says:\n{text[:3000]}")


def graph_shows(names: list[str]):
    """The asset graph (SVG) has a node labelled with every name."""
    def condition(driver):
        labels = driver.execute_script(GRAPH_LABELS_JS)
        return all(labelled(labels, name) for name in names)
    return condition


def displayed_node(driver, name: str) -> bool:
    from selenium.webdriver.common.by import By

    nodes = driver.find_elements(By.XPATH, f"//*[local-name()='svg']//*[normalize-space(text())='{name}']")
    return any(node.is_displayed() for node in nodes)


def metadata_value(driver, key: str) -> str | None:
    """The Value cell of `key`'s row in the asset page's metadata table, as displayed."""
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.XPATH, f"//tr[td[1][normalize-space()='{key}']]/td[last()]")
    return cells[0].text.strip() if cells and cells[0].is_displayed() else None


def screenshot(driver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def test_the_asset_graph_shows_every_asset_from_teacher_traces_to_routing_policy(ui, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    base, _ = ui
    browser.get(f"{base}/asset-groups")
    wait_until(browser, "the asset groups", graph_shows(["capture", "curate", "train", "evaluate", "audit"]))
    # The five groups start collapsed; the UI's own shortcut (Alt+E) expands them all.
    if not graph_shows(ALL_ASSETS)(browser):
        ActionChains(browser).key_down(Keys.ALT).send_keys("e").key_up(Keys.ALT).perform()
    wait_until(browser, f"asset nodes {ALL_ASSETS}", graph_shows(ALL_ASSETS))
    wait_until(browser, "teacher_traces and routing_policy drawn on screen",
               lambda d: displayed_node(d, "teacher_traces") and displayed_node(d, "routing_policy"))
    # Statuses arrive after the layout; wait for them so the picture shows what was materialized.
    done = [name for name in RETRAIN_ASSETS if name != "student_eval_report"]  # that label is truncated
    wait_until(browser, f"{done} drawn as materialized",
               lambda d: all(labelled(d.execute_script(GREEN_LABELS_JS), name) for name in done))
    time.sleep(1)  # let the zoom-to-fit animation settle before the picture
    screenshot(browser, "asset-graph")


def test_routing_policy_lineage_reaches_back_to_teacher_traces(ui, browser):
    base, _ = ui
    browser.get(f"{base}/assets/routing_policy?view=lineage&lineageScope=upstream&lineageDepth=20")
    wait_until(browser, f"the upstream lineage {LINEAGE}", graph_shows(LINEAGE))
    wait_until(browser, "teacher_traces and routing_policy drawn on screen",
               lambda d: displayed_node(d, "teacher_traces") and displayed_node(d, "routing_policy"))
    assert not labelled(browser.execute_script(GRAPH_LABELS_JS), "model_card")  # downstream of the policy
    wait_until(browser, "routing_policy drawn as materialized",
               lambda d: labelled(d.execute_script(GREEN_LABELS_JS), "routing_policy"))
    time.sleep(1)
    screenshot(browser, "routing-policy-lineage")


def test_the_eval_report_page_shows_the_headline_figures(ui, browser):
    base, materialized = ui
    browser.get(f"{base}/assets/student_eval_report")
    wait_until(browser, f"metadata rows {list(HEADLINE_KEYS)}",
               lambda d: all(metadata_value(d, key) is not None for key in HEADLINE_KEYS))
    shown = {key: metadata_value(browser, key) for key in HEADLINE_KEYS}
    screenshot(browser, "student-eval-report")
    for key in HEADLINE_KEYS:  # as recorded: figures rounded by readable(), "none" where there is none
        value = materialized.report[key]
        if value == "none":
            assert shown[key] == "none", key
        else:
            assert float(shown[key]) == pytest.approx(float(value), rel=1e-9, abs=1e-12), key
            assert float(value) == readable(float(value)), key  # the UI gets the rounded figure
