"""The web dashboard at /ui in a real headless Chromium (Debian's, driven by Playwright) against a live API and a
real worker: log in, upload, submit, watch the job to success, see its chart and image grid, download a file.
Screenshots of the main pages are saved under ``$CONDENSE_SCREENSHOTS`` (default ``.test-screenshots/``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_fixtures import EMBEDDED, LiveService, live_service, tiny_distill_spec  # noqa: F401 - fixtures
from tests.test_data_loaders import class_images, write_zip

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium on a machine without internet: no background connections, no sandbox (tests run as root).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update"]
SCREENSHOTS = Path(os.environ.get("CONDENSE_SCREENSHOTS", Path(__file__).parent.parent / ".test-screenshots"))


@pytest.fixture(scope="module")
def backend() -> str:
    return EMBEDDED  # the pages are the same on either backend; the API tests cover both


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed for the dashboard tests: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def test_upload_submit_watch_and_download_in_the_browser(live_service: LiveService, browser, tmp_path: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    upload = write_zip(tmp_path / "shapes.zip", class_images("", {"circle": 24, "square": 24, "cross": 24}, size=8))
    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_service.base_url}/ui")
    page.fill("#api-key", "not-a-key")
    page.click("#login-form button")
    page.wait_for_selector("text=that key was refused")
    page.screenshot(path=SCREENSHOTS / "login.png")
    page.fill("#api-key", live_service.client.headers["Authorization"].removeprefix("Bearer "))
    page.click("#login-form button")
    page.wait_for_selector("h1:text('Jobs')")

    page.click("text=Datasets")
    page.set_input_files("#upload-file", str(upload))
    page.click("#upload-form button")
    page.wait_for_selector("svg#class-counts")
    assert page.locator("svg#class-counts text", has_text="circle").count() == 1
    page.wait_for_selector("#dataset-grid img")
    assert page.locator("#dataset-grid .sample").count() == 18  # 6 of each class, named by their files
    assert {name.split("/")[0] for name in page.locator("#dataset-grid .sample span").all_inner_texts()} == {
        "circle", "square", "cross"}
    page.screenshot(path=SCREENSHOTS / "dataset.png", full_page=True)

    page.select_option("#job-kind", "prune")
    page.select_option("#job-method", "el2n")
    page.fill("#job-keep", "0.25")
    page.click("#submit-form button")
    page.wait_for_selector("#status.status-succeeded", timeout=600_000)
    page.wait_for_selector("svg#accuracy rect.acc-bar")
    assert page.locator("svg#accuracy rect.acc-bar").count() == 3  # pruned, random and full data, with error bars
    assert "Over random" in page.inner_text("#verdict")
    # Kept and pruned samples with the names of the user's own files.
    page.wait_for_selector("#kept-grid img")
    assert page.eval_on_selector("#kept-grid img", "img => img.complete && img.naturalWidth > 0")
    assert page.locator("#kept-grid .sample").count() == 14 and page.locator("#pruned-grid .sample").count() >= 3
    assert page.locator("#kept-grid .sample span").first.inner_text().split("/")[0] in {"circle", "square", "cross"}
    page.wait_for_selector("svg#score-histogram")
    page.wait_for_selector("svg#per-class")
    page.screenshot(path=SCREENSHOTS / "job.png", full_page=True)

    with page.expect_download() as download:
        page.click("#downloads button[data-name='kept.csv']")
    kept = Path(download.value.path()).read_text().splitlines()
    assert kept[0].startswith("index,source,label,class_name") and len(kept) == 1 + 14  # 25% of 57 training images
    assert {line.split(",")[1].split("/")[0] for line in kept[1:]} <= {"circle", "square", "cross"}

    with page.expect_download() as everything:
        page.click("#download-all")
    assert everything.value.suggested_filename.endswith(".zip")

    page.click("text=Jobs")
    page.wait_for_selector("table#jobs td.status-succeeded")
    page.screenshot(path=SCREENSHOTS / "jobs.png", full_page=True)
    assert not errors, errors


def test_the_dashboard_is_served_by_the_api_itself(live_service: LiveService) -> None:
    page = live_service.client.get("/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http" not in page.text.replace(live_service.base_url, "")  # no CDN: every asset from /ui/static
    for asset in ("/ui/static/app.js", "/ui/static/style.css"):
        assert live_service.client.get(asset).status_code == 200


def test_a_distill_job_page_shows_its_images_loss_curve_and_recommendation(live_service: LiveService, browser) -> None:
    from condense import Client

    token = live_service.client.headers["Authorization"].removeprefix("Bearer ")
    with Client(live_service.base_url, token) as client:
        dataset = client.datasets.builtin("digits")
        job = client.jobs.submit(tiny_distill_spec(dataset.id)).wait()
    page = browser.new_page()
    page.goto(f"{live_service.base_url}/ui")
    page.fill("#api-key", token)
    page.click("#login-form button")
    page.wait_for_selector("h1:text('Jobs')")
    page.goto(f"{live_service.base_url}/ui#/jobs/{job.id}")
    page.wait_for_selector("svg#loss-curve polyline")
    page.wait_for_selector("#preview img")
    assert page.eval_on_selector("#preview img", "img => img.complete && img.naturalWidth > 0")
    assert page.locator("svg#accuracy rect.acc-bar").count() == 3  # synthetic, coreset and random real
    assert "pruned coreset" in page.inner_text("#job-result")
    page.screenshot(path=SCREENSHOTS / "distill-job.png", full_page=True)


def test_the_api_docs_load_with_the_network_off(live_service: LiveService, browser) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(live_service.base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{live_service.base_url}/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    assert page.locator(".opblock-summary-path", has_text="/v1/jobs").count() >= 1
    page.screenshot(path=SCREENSHOTS / "docs.png")
    assert not outside, outside  # Swagger UI asked for nothing outside the API
    page.goto(f"{live_service.base_url}/redoc")
    page.get_by_text("/v1/jobs").first.wait_for(timeout=60_000)  # ReDoc drew the operations
    # ReDoc's bundle links only its footer's "by Redocly" logo from its site; refused, the page is whole.
    assert all(url.startswith("https://cdn.redoc.ly/") and url.endswith(".svg") for url in outside), outside
    page.goto(live_service.base_url)  # / leads to the dashboard
    assert page.url.endswith("/ui")
