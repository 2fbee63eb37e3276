"""The MLflow UI in a real browser: headless Chromium (Debian ``chromium`` and
``chromium-driver``, driven by Selenium) opens a sweep recorded on a real ``mlflow server`` and
finds the parent with its children (named by their values, the pruned one marked), a
batch-level metric chart and the confusion matrix; then the sweep's comparison page."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import REPO, SWEEP, needs_chromium, run_cli

pytestmark = pytest.mark.slow  # a real mlflow server and headless Chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
EXPANDER = "button[data-component-id*='runnamecellrenderer']"  # the +/- of a parent run
# three trials drawn in this order by the seeded sampler: lr 0.01, 1e-9 (hopeless: the median
# pruner stops it after its first epoch), 0.01
SWEEP_WITH_A_PRUNED_TRIAL = [
    *SWEEP,
    "data=digits_9v4",
    "hydra.sweeper.n_trials=3",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.sampler.seed=4",
    "optimizer.lr=choice(0.01,1e-9)",
    "model.dropout=choice(0.1,0.2,0.3)",
    "imbalance.ratio=1.0",
    "objective=val_roc_auc",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "hydra.sweeper.pruner.n_warmup_steps=0",
    "tracking.every_n_batches=1",  # a debug epoch has a few batches: a curve of each
]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1200",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition: Callable[[], object], what: str, timeout: float = 60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = condition()
        except Exception:  # the page is still rendering
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not appear; page text:\n{page_text(driver)[:3000]}")


def page_text(driver) -> str:
    return driver.find_element("tag name", "body").text


@needs_chromium
def test_mlflow_ui_shows_the_multirun_its_metrics_and_artifacts(tmp_path, mlflow_server, browser):
    from selenium.webdriver.common.by import By

    run_cli(
        tmp_path,
        *SWEEP_WITH_A_PRUNED_TRIAL,
        "tracking=server",
        f"tracking.uri={mlflow_server}",
        "task_name=ui-check",
    )
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("ui-check").experiment_id
    runs = client.search_runs([exp])
    (parent,) = [r for r in runs if r.data.tags.get("losslab.run_type") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3
    shots = tmp_path / "screenshots"
    shots.mkdir()

    # the experiment: the parent run, expanded to show its children
    browser.get(f"{mlflow_server}/#/experiments/{exp}/runs")
    wait_for(browser, lambda: parent.info.run_name in page_text(browser), "the parent run")
    browser.save_screenshot(str(shots / "experiment.png"))
    expander = wait_for(
        browser,
        lambda: browser.find_elements(By.CSS_SELECTOR, EXPANDER),
        "the expander of the parent run",
    )
    expander[0].click()
    for child in children:  # each child's row links to its page
        link = f"a[href$='/runs/{child.info.run_id}']"
        wait_for(browser, lambda q=link: browser.find_elements(By.CSS_SELECTOR, q), "a child run")
    browser.save_screenshot(str(shots / "experiment-expanded.png"))
    # children named by their searched values, distinct, and all visible in the list;
    # the pruned trial says so at the front of its name
    shown = [child.info.run_name for child in children]
    assert len(set(shown)) == 3, shown
    for child in children:
        trial = child.data.tags["optuna.trial_number"]
        lr, dropout = (child.data.params[k] for k in ("optimizer.lr", "model.dropout"))
        expected = rf"(\[pruned\] )?#{trial} lr=({lr}|1e-09) dropout={dropout}"
        assert re.fullmatch(expected, child.info.run_name), child.info.run_name
    visible = page_text(browser)
    assert all(name in visible for name in shown)
    pruned = [c for c in children if c.data.tags.get("losslab.outcome") == "pruned"]
    assert pruned and all(c.info.run_name.startswith("[pruned] #") for c in pruned)

    # a child: its batch-level metric chart
    child = children[0]
    browser.get(f"{mlflow_server}/#/experiments/{exp}/runs/{child.info.run_id}/model-metrics")
    wait_for(browser, lambda: "batch/loss" in page_text(browser), "the batch/loss chart")
    charts = wait_for(
        browser, lambda: browser.find_elements(By.CSS_SELECTOR, "svg.main-svg"), "a drawn chart"
    )
    assert len(charts) >= 2
    browser.save_screenshot(str(shots / "child-metrics.png"))

    # and its confusion matrix artifact, shown as an image
    browser.get(f"{mlflow_server}/#/experiments/{exp}/runs/{child.info.run_id}/artifacts")
    folder = wait_for(
        browser,
        lambda: [e for e in browser.find_elements(By.XPATH, "//*[text()='plots']")],
        "the plots folder",
    )
    folder[0].click()
    png = wait_for(
        browser,
        lambda: [e for e in browser.find_elements(By.XPATH, "//*[text()='confusion_matrix.png']")],
        "confusion_matrix.png",
    )
    png[0].click()
    artifact = "plots/confusion_matrix.png"
    stored = client.download_artifacts(child.info.run_id, artifact, str(tmp_path))
    width = int.from_bytes(Path(stored).read_bytes()[16:20], "big")  # from the PNG header
    shown = wait_for(
        browser,
        lambda: [
            i
            for i in browser.find_elements(By.TAG_NAME, "img")
            if (i.get_attribute("src") or "").startswith("blob:")
            and browser.execute_script("return arguments[0].naturalWidth", i) == width
        ],
        "the confusion-matrix image",
    )
    assert shown and "confusion_matrix.png" in page_text(browser)
    browser.save_screenshot(str(shots / "child-confusion-matrix.png"))

    _check_the_comparison_page(browser, tmp_path, mlflow_server, parent.info.run_id, shots)
    for shot in shots.glob("*.png"):  # each a drawn page, not a blank or an error screen
        assert _colours(shot) > 20, shot.name


def _colours(png: Path) -> int:
    """Distinct colours in a screenshot: a blank page has one or two."""
    from PIL import Image

    with Image.open(png) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def _check_the_comparison_page(browser, tmp_path, server: str, parent_id: str, shots) -> None:
    """Every trial with its state; the table and the plots drawn clear of each other."""
    out = tmp_path / "compare"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "pipelines" / "compare.py"),
            "--parent-run",
            parent_id,
            "--tracking-uri",
            server,
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    browser.get((out / "comparison.html").as_uri())
    boxes = wait_for(browser, lambda: _boxes(browser, "table.runs, img"), "the comparison page")
    assert len(boxes) == 4  # the table and three plots
    width = browser.execute_script("return window.innerWidth")
    for i, a in enumerate(boxes):
        assert a["right"] <= width, a  # nothing to scroll sideways for
        for b in boxes[i + 1 :]:
            assert not _overlap(a, b), (a, b)
    assert "PRUNED" in page_text(browser)
    browser.save_screenshot(str(shots / "comparison.png"))


def _boxes(driver, selector: str) -> list[dict[str, float]]:
    """Where each element matching ``selector`` is drawn, once every image has loaded."""
    return driver.execute_script(
        "const els = [...document.querySelectorAll(arguments[0])];"
        "if (els.some(e => e.tagName === 'IMG' && !e.complete)) return null;"
        "return els.map(e => e.getBoundingClientRect().toJSON());",
        selector,
    )


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )
