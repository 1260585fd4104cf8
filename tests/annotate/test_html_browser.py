"""The conversation page in a real browser: Debian's chromium, headless, driven by selenium through chromedriver.

Clicking a turn opens its evidence (the concept names are checked), hovering shows the numbers, and markup in the
data stays text: no dialog fires and no injected element exists. Screenshots are saved as artifacts (in
``$KGEMO_TEST_ARTIFACTS`` when set, else pytest's temporary folder; the path is recorded as a test property).
Every test skips, saying why, where chromium or chromedriver is missing (.ci/run installs them); selenium comes with
the ``test`` extra.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import selenium  # noqa: F401  (the test extra; only a missing browser skips)
from test_html_page import TURNS, XSS, hand_result, xss_result

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")


def find_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or skip saying what is missing (selenium is in the test extra: a missing
    selenium is a broken install and fails)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("chromium / chromedriver not installed (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    return browser, driver


@pytest.fixture(scope="session")
def browser():
    """A headless chromium (fresh profile, no network services); dialogs are left open so tests can see them."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = find_chromium()
    profile = tempfile.mkdtemp(prefix="kgemo-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("unhandledPromptBehavior", "ignore")
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:  # e.g. a chromium / chromedriver version mismatch
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium did not start: {str(exc).splitlines()[0]}")
    driver.set_window_size(1400, 1000)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("KGEMO_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(driver, path: Path, fragment: str = "") -> None:
    """Load a page from disk and wait until its first render is done (the page sets body[data-ready])."""
    from selenium.common.exceptions import UnexpectedAlertPresentException
    from selenium.webdriver.support.ui import WebDriverWait

    fired = False
    try:
        driver.get("about:blank")  # a new fragment alone would not reload the page
        driver.get(path.resolve().as_uri() + fragment)
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script("return document.body && document.body.getAttribute('data-ready')") == "1")
    except UnexpectedAlertPresentException:
        fired = True
    if fired:
        assert_no_dialog(driver)  # fails naming the dialog's text, and closes it for the next test


def screenshot(driver, artifacts: Path, name: str, record_property) -> Path:
    path = artifacts / name
    assert driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    record_property("screenshot", str(path))
    return path


def texts(driver, css: str) -> list[str]:
    """The exact text (``textContent``) of each element matching ``css``."""
    return driver.execute_script("return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent)",
                                 css)


def assert_no_dialog(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = driver.switch_to.alert
        message = alert.text
    except NoAlertPresentException:
        return
    alert.accept()
    pytest.fail(f"a dialog fired: {message!r}")


def assert_nothing_injected(driver) -> None:
    found = driver.execute_script("""
        return {img: document.querySelectorAll('img').length, onerror: document.querySelectorAll('[onerror]').length,
                scripts: Array.from(document.scripts).map(s => s.type || 'text/javascript'),
                bold: document.querySelectorAll('#app b').length};""")
    assert found["img"] == 0 and found["onerror"] == 0
    assert found["scripts"] == ["application/json", "text/javascript"]


# -- the conversation page --------------------------------------------------------------------------------
def test_click_a_turn_opens_its_evidence(browser, tmp_path, artifacts, record_property):
    from selenium.webdriver.common.by import By

    page = tmp_path / "conversation.html"
    hand_result().to_html(page)
    open_page(browser, page)
    turns = browser.find_elements(By.CSS_SELECTOR, "#chat .turn")
    assert [t.find_element(By.CSS_SELECTOR, ".text").text for t in turns] == [t[1] for t in TURNS]
    assert texts(browser, "#chat .chip.pred") == [t[2] for t in TURNS]
    assert not browser.find_elements(By.CSS_SELECTOR, "#evidence .evidence")  # nothing open before a click

    turns[1].click()
    assert "selected" in turns[1].get_attribute("class")
    # The panel lists the turn's concepts by name (underscores shown as spaces), heaviest first, and its events.
    assert texts(browser, "#evidence .concept-name") == ["pet", "joy", "smile", "animal shelter"]
    assert texts(browser, "#evidence .event-tail") == ["to exercise"]
    graph = browser.find_element(By.CSS_SELECTOR, "#evidence svg.graph")
    nodes = {kind: [n.get_attribute("data-name") for n in graph.find_elements(By.CSS_SELECTOR, f'[data-kind="{kind}"]')]
             for kind in ("utterance", "word", "concept", "event")}
    assert nodes == {"utterance": [TURNS[1][1]], "word": ["dog", "happy"],
                     "concept": ["pet", "animal_shelter", "joy", "smile"], "event": ["to exercise"]}
    # Edge thickness follows the model's weights: α 0.8 (pet) is drawn thicker than α 0.2 (animal_shelter).
    widths = [float(e.get_attribute("stroke-width")) for e in
              graph.find_elements(By.CSS_SELECTOR, 'path[data-kind="concept-edge"]')]
    assert widths == pytest.approx([1 + 8 * 0.8, 1 + 8 * 0.2, 1 + 8 * 0.7, 1 + 8 * 0.3], abs=0.01)
    screenshot(browser, artifacts, "conversation_turn2.png", record_property)

    turns[2].click()                                        # another turn replaces the panel
    assert texts(browser, "#evidence .concept-name") == ["sad", "cry"]
    turns[3].click()                                        # a turn without evidence says so
    assert "No knowledge evidence" in browser.find_element(By.CSS_SELECTOR, "#evidence").text


def test_confidence_bars_and_hover_numbers(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = tmp_path / "conversation.html"
    hand_result().to_html(page)
    open_page(browser, page, "#turn=1")                      # a turn can be opened from the URL
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('#chat .bar > span')).map(s => s.style.width)")
    assert widths == [f"{round(100 * t[3])}%" for t in TURNS]
    assert texts(browser, "#evidence .concept-name") == ["work", "employment", "celebrate"]
    node = browser.find_element(By.CSS_SELECTOR, '#evidence [data-kind="concept"][data-name="employment"]')
    ActionChains(browser).move_to_element(node).perform()
    tip = browser.find_element(By.ID, "kg-tip")
    assert tip.is_displayed()
    shown = tip.text.replace("\n", "")
    assert "α (attention)0.400" in shown and "w (utterance weight)0.333" in shown
    assert "job —RelatedTo→ employment" in tip.text


def test_several_conversations_switch(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from kgemo.annotate.html_page import conversation_page

    other = hand_result("second", [("Cleo", "What a lovely day", "joy", 0.9, [], [])])
    page = tmp_path / "two.html"
    page.write_text(conversation_page([hand_result(), other]), encoding="utf-8")
    open_page(browser, page)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chat .turn")) == 4
    Select(browser.find_element(By.ID, "conversation")).select_by_index(1)
    assert texts(browser, "#chat .text") == ["What a lovely day"]
    assert texts(browser, "#chat .speaker") == ["Cleo"]


# -- text is data, never markup ---------------------------------------------------------------------------
def test_dialog_detection_works(browser, tmp_path):
    """The control for the escaping tests: a page that does run alert() is caught by the same check."""
    page = tmp_path / "alert.html"
    page.write_text("<!DOCTYPE html><title>x</title><script>alert('fired')</script>", encoding="utf-8")
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.as_uri())
    # get() may return before the page's script has run on a loaded machine: wait for the dialog, or the check
    # below would look too early and the late alert would fail the next test.
    WebDriverWait(browser, 20).until(expected_conditions.alert_is_present())
    with pytest.raises(pytest.fail.Exception, match="fired"):
        assert_no_dialog(browser)
    assert_no_dialog(browser)                                # accepted: gone


def test_markup_in_speakers_texts_and_concepts_stays_text(browser, tmp_path, artifacts, record_property):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    res = xss_result()
    page = tmp_path / "xss.html"
    res.to_html(page)
    open_page(browser, page)
    assert_no_dialog(browser)
    assert browser.title == f"kgemo: {res.conversation_id}"
    assert texts(browser, "#chat .text") == [u.text for u in res]
    assert texts(browser, "#chat .speaker") == [u.speaker for u in res]
    shown = browser.find_element(By.ID, "chat").text                 # as rendered on screen, too
    assert f"{XSS[0]} hello {XSS[2]}" in shown and XSS[1] in shown and "<b>bold</b>" in shown
    for k, turn in enumerate(browser.find_elements(By.CSS_SELECTOR, "#chat .turn")):
        turn.click()
        assert_no_dialog(browser)
        assert texts(browser, "#evidence .concept-name") == [c.concept for c in res[k].concepts]
        assert texts(browser, "#evidence .event-tail") == [e.tail for e in res[k].events]
        for node in browser.find_elements(By.CSS_SELECTOR, "#evidence svg .node"):
            ActionChains(browser).move_to_element(node).perform()   # tooltips render the same strings
        assert_no_dialog(browser)
        assert_nothing_injected(browser)
    browser.find_elements(By.CSS_SELECTOR, "#chat .turn")[0].click()
    assert XSS[0] in browser.find_element(By.ID, "evidence").text
    assert XSS[1] in browser.find_element(By.ID, "evidence").text
    screenshot(browser, artifacts, "conversation_escaping.png", record_property)


# -- the real default model -------------------------------------------------------------------------------
@pytest.mark.slow
def test_default_annotator_page_in_browser(browser, tmp_path, artifacts, record_property):
    from selenium.webdriver.common.by import By

    from kgemo import Annotator
    from kgemo.annotate import read_conversations

    example = Path(__file__).resolve().parents[2] / "examples" / "conversation.json"
    res = Annotator.from_pretrained("default", device="cpu").annotate(read_conversations(example)[0])
    page = tmp_path / "example.html"
    res.to_html(page)
    open_page(browser, page)
    turns = browser.find_elements(By.CSS_SELECTOR, "#chat .turn")
    assert len(turns) == len(res) == 8
    assert texts(browser, "#chat .chip.pred") == res.labels("emotion")
    k = next(i for i, u in enumerate(res) if u.concepts)      # a turn with concept evidence (not every turn has)
    turns[k].click()
    assert texts(browser, "#evidence .concept-name") == [c.concept.replace("_", " ") for c in res[k].concepts]
    assert texts(browser, "#evidence .event-tail") == [e.tail for e in res[k].events]
    screenshot(browser, artifacts, "conversation_default_model.png", record_property)
