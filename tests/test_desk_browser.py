"""The review desk in a real headless Chromium (Debian's, driven by Selenium through chromedriver).

One walk through the desk as an operator: log in from the keyboard, see the sessions, filter,
open one, label it, start an eval and open its report, ask the review agent for a prompt edit,
apply it behind the gate, then revert it. Every page is checked for console errors, and a
screenshot of each step lands in the test's temporary folder (`DESK_SCREENSHOTS=dir` copies
them there too: that is how docs/review-desk.png was taken).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, sim_env, start_router, stop_router, wait_for_record

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

ADMIN = "desk-browser-admin-0123456789"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: install Debian's chromium and chromium-driver (`make browser` does, as root)",
)
QUESTIONS = ["hello", "Prove that sqrt(2) is irrational", "What time does the Louvre close tonight?",
             "Write a Python function that reverses a string"]


@pytest.fixture(scope="module")
def served(sim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("desk-browser")
    router = start_router(sim_env(sim, ADMIN_API_KEY=ADMIN, ROUTER_API_KEYS="a-client-key-0123456789",
                                  EVAL_LABELS_FILE=str(tmp / "labels.json"), PROMPTS_DIR=str(tmp / "prompts"),
                                  REVIEW_DESK_WORK_DIR=str(tmp / "work")), tmp)
    ids = {}
    for question in QUESTIONS:
        answer = httpx.post(f"{router.v1}/chat/completions",
                            headers={"Authorization": "Bearer a-client-key-0123456789"},
                            json={"model": "ai-router", "messages": [{"role": "user", "content": question}]},
                            timeout=30)
        ids[question] = answer.headers["x-session-id"]
    for sid in ids.values():
        wait_for_record(router, sid)
    yield {"router": router, "ids": ids, "tmp": tmp}
    stop_router(router)


@pytest.fixture()
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1360,900", "--no-first-run", "--disable-background-networking"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    except WebDriverException as error:
        pytest.skip(f"chromium would not start headless here: {error.msg}")
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


class Walk:
    """The browser, with the checks every page gets."""

    def __init__(self, driver, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots, self.count = driver, base, shots, 0

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.check()

    def check(self) -> None:
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        copy_to = os.environ.get("DESK_SCREENSHOTS")
        if copy_to:
            Path(copy_to).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(copy_to) / path.name)
        return path

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("body").text

    def until(self, condition, what: str, timeout: float = 120, reload: bool = False):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            assert time.monotonic() < deadline, f"gave up waiting for {what}: {self.text()[:2000]}"
            time.sleep(0.3)
            if reload:
                self.driver.refresh()
            self.check()

    def submit(self, css: str) -> None:
        """Click a form's button and wait for the page it leads to."""
        old = self.find("html")
        self.find(css).click()
        self.until(lambda: _stale(old), "the next page", timeout=30)
        self.until(lambda: self.driver.execute_script("return document.readyState") == "complete", "the page")
        self.check()

    def follow_job(self, what: str, timeout: float = 240) -> None:
        assert "/review/jobs/" in self.driver.current_url
        self.until(lambda: self.find("#job-state").text in ("done", "failed"), what, timeout)
        assert self.find("#job-state").text == "done", self.find("#job-log").text
        self.until(lambda: self.find("#job-link").is_displayed(), f"the link to the result of {what}")


def _stale(element) -> bool:
    try:
        _ = element.tag_name
    except WebDriverException:  # stale, or "does not belong to the document": the page was replaced
        return True
    return False


def test_an_operator_walks_the_desk(served, browser, tmp_path):
    walk = Walk(browser, served["router"].url, tmp_path)
    ids = served["ids"]

    # Log in from the keyboard: the key field has the focus, Enter submits.
    walk.open("/review/sessions")
    assert "/review/login" in browser.current_url
    assert browser.switch_to.active_element.get_attribute("id") == "key"
    browser.switch_to.active_element.send_keys(ADMIN + Keys.ENTER)
    walk.until(lambda: browser.current_url.endswith("/review/sessions"), "the login")
    walk.check()
    # The first Tab reaches the skip link; the page has one h1 and named form controls.
    walk.find("body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    for control in browser.find_elements(By.CSS_SELECTOR, "select, input:not([type=hidden])"):
        labelled = control.get_attribute("aria-label") or browser.find_elements(
            By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")
        assert labelled, control.get_attribute("outerHTML")

    # The sessions show up (the index catches up off the request path), newest first.
    walk.until(lambda: all(sid in walk.text() or sid in browser.page_source for sid in ids.values()),
               "the sessions in the list", timeout=60, reload=True)
    walk.shot("sessions")

    # Filter: SIMPLE only.
    Select(walk.find("#f-route")).select_by_visible_text("SIMPLE")
    walk.submit("form.filters button[type=submit]")
    walk.until(lambda: "route=SIMPLE" in browser.current_url, "the filtered list", timeout=20)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.sessions tbody tr")
    assert rows and all(r.find_elements(By.TAG_NAME, "td")[3].text == "SIMPLE" for r in rows)
    assert ids["hello"] in browser.page_source and ids[QUESTIONS[1]] not in browser.page_source
    walk.shot("filtered")

    # Open the Louvre question and label it ENRICH (the simulator's classifier sends it MODERATE).
    walk.open("/review/sessions?q=Louvre")
    browser.find_element(By.LINK_TEXT, QUESTIONS[2]).click()
    walk.check()
    assert "Path through the graph" in walk.text() and "generate" in walk.find("ol.path").text
    Select(walk.find("#label-route")).select_by_visible_text("ENRICH")
    walk.submit("section[aria-labelledby=label-h] button[type=submit]")
    assert "Label saved." in walk.text() and "labelled ENRICH" in walk.text()
    walk.shot("detail")

    # Overview.
    walk.open("/review?window=1h")
    assert "Route shares" in walk.text()
    walk.shot("overview")

    # Start an eval over the regression set, follow it, open its report: the title comes first.
    walk.open("/review/evals")
    walk.submit("form[action='/review/evals'] button[type=submit]")
    walk.follow_job("the eval")
    walk.shot("eval-job")
    walk.find("#job-result").click()
    first = browser.find_element(By.CSS_SELECTOR, "body > *")  # the title comes before the charts
    assert first.tag_name == "h1" and first.text.startswith("Eval report")
    walk.shot("eval-report")
    walk.open("/review/evals")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart circle") and "open report" in walk.text()

    # Ask for a prompt edit, apply it behind the gate, then revert it.
    walk.open("/review/prompts")
    walk.submit("form[action='/review/prompts/review'] button[type=submit]")
    walk.follow_job("the review")
    walk.find("#job-result").click()
    walk.check()
    diff = walk.find("pre.diff").text
    assert "+- \"What time does the Louvre close tonight?\" -> ENRICH" in diff
    walk.shot("review")
    walk.submit("form[action$='/apply'] button[type=submit]")
    walk.follow_job("the gated apply")
    walk.find("#job-result").click()
    walk.check()
    assert "kept" in walk.find("dl.facts").text
    walk.shot("applied")
    walk.open("/review/prompts")
    assert "routing/system" in walk.text()
    overlay = served["tmp"] / "prompts" / "routing" / "system.md"
    assert "Louvre" in overlay.read_text()
    assert "Louvre" not in (ROOT / "prompts" / "routing" / "system.md").read_text()  # shipped: never written
    walk.submit("form[action='/review/prompts/revert'] button[type=submit]")
    assert "reverted" in walk.text()
    assert not overlay.exists()
    walk.shot("reverted")
    walk.open("/review/sessions")
    assert "ENRICH" in walk.find("table.sessions").text  # the label is in the list
    walk.shot("sessions-labelled")
    assert len(list(tmp_path.glob("*.png"))) == walk.count >= 10
