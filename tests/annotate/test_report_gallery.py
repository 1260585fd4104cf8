"""The split gallery in a real browser (headless chromium through selenium; skips where it is absent): the
per-class table and confusion matrix agree with the Python report, the filters (gold, predicted, error type,
dataset, text) and confusion-matrix cells select the right utterances, rows open their conversation and evidence,
a 2,610-utterance split is paginated, and markup in the data stays text.

Reports are built from hand-made results (no model), so the page is all that is tested here.
"""
from __future__ import annotations

import random

import pytest
from test_html_browser import (artifacts, assert_no_dialog, assert_nothing_injected, browser,  # noqa: F401
                               open_page, screenshot, texts)
from test_html_page import TURNS, XSS, concept, event, hand_result, utterance, xss_result

from kgemo.annotate import AnnotationResult
from kgemo.annotate.split_report import ERROR_TYPES, SplitReport
from kgemo.data.labels import EKMAN7, label_space

MELD = label_space("meld", "emotion")


def hand_report() -> SplitReport:
    """Three conversations from two datasets; predictions are those of TURNS / xss_result."""
    first = hand_result("d1")                                   # predicted joy, joy, sadness, neutral
    second = xss_result()                                       # predicted anger, fear, neutral
    third = hand_result("d3", TURNS[:2])                        # predicted joy, joy
    gold = [[{"emotion": g} for g in ("joy", "neutral", "anger", "sadness")],
            [{"emotion": g} for g in ("anger", None, "joy")],
            [{"emotion": g} for g in ("joy", "joy")]]
    return SplitReport([first, second, third], gold, ["meld", "dailydialog", "meld"], {"emotion": MELD},
                       {"emotion": "weighted_f1"}, "test", "hand")


def big_report(n_utterances: int = 2610, seed: int = 0) -> SplitReport:
    """A MELD-test-sized report (2,610 utterances, 280 conversations, 5 concepts and 3 events each)."""
    rng = random.Random(seed)
    results, gold, k = [], [], 0
    while k < n_utterances:
        n = min(rng.randint(4, 14), n_utterances - k)
        utts, g = [], []
        for i in range(n):
            label = rng.choice(EKMAN7)
            cs = [concept(f"concept_{rng.randint(0, 3000)}", f"word{rng.randint(0, 800)}", 0.2, 0.5, 0.4,
                          rng.random()) for _ in range(5)]
            es = [event(f"PersonX does thing {rng.randint(0, 500)}", r, f"tail {rng.randint(0, 900)}", 0.5)
                  for r in ("xReact", "oReact", "xIntent")]
            utts.append(utterance(i, f"Speaker{rng.randint(0, 30)}", f"utterance number {k + i} says something",
                                  label, round(rng.uniform(0.2, 0.9), 6), cs, es))
            g.append({"emotion": rng.choice(EKMAN7)})
        results.append(AnnotationResult(str(len(results)), utts, {"name": "synthetic"}, ["emotion"]))
        gold.append(g)
        k += n
    return SplitReport(results, gold, ["meld"] * len(results), {"emotion": MELD}, {"emotion": "weighted_f1"}, "test",
                       "synthetic")


@pytest.fixture
def gallery(browser, tmp_path):  # noqa: F811
    report = hand_report()
    page = tmp_path / "gallery.html"
    report.to_html(page)
    open_page(browser, page)
    return report


def choose(driver, select_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, select_id)).select_by_visible_text(text)


def shown_rows(driver) -> list[int]:
    return [int(r) for r in driver.execute_script(
        "return Array.from(document.querySelectorAll('#rows tr.row')).map(r => r.getAttribute('data-row'))")]


def test_summary_matches_the_python_report(browser, gallery):  # noqa: F811
    from selenium.webdriver.common.by import By

    s = gallery.scores()["all"]["emotion"]
    f1 = texts(browser, "#per-class td.f1")
    assert f1 == [f"{s['report']['classes'][label]['f1']:.1f}" for label in MELD.labels]
    cells = texts(browser, "#confusion td")
    assert [int(c) for c in cells] == [n for row in s["confusion"] for n in row]
    assert f"{s['report']['score']:.2f}" in browser.find_element(By.ID, "scores").text
    counts = browser.find_element(By.ID, "error-counts").text
    for name in ERROR_TYPES:
        assert f"{name.replace('_', ' ')} {s['errors'][name]}" in counts
    assert browser.find_element(By.ID, "count").text == "showing 9 of 9 utterances"


def test_filters_select_the_right_utterances(browser, gallery):  # noqa: F811
    from selenium.webdriver.common.by import By

    gold, pred = gallery.gold_ids("emotion").tolist(), gallery.pred_ids("emotion").tolist()
    errors = gallery.error_types("emotion")
    choose(browser, "f-gold", "joy")
    assert shown_rows(browser) == [i for i, g in enumerate(gold) if g == MELD.index("joy")]
    assert set(texts(browser, "#rows .chip.gold")) == {"joy"}
    choose(browser, "f-pred", "joy")
    assert shown_rows(browser) == [i for i in range(9) if gold[i] == pred[i] == MELD.index("joy")]
    browser.find_element(By.ID, "f-reset").click()
    assert len(shown_rows(browser)) == 9
    choose(browser, "f-error", "missed: gold is an emotion, predicted neutral")
    assert shown_rows(browser) == [i for i, e in enumerate(errors) if e == "missed"] == [3, 6]
    choose(browser, "f-error", "any error")
    assert shown_rows(browser) == [i for i, e in enumerate(errors) if e not in ("correct", "unlabelled")]
    assert set(texts(browser, "#rows .err")) <= {"missed", "false alarm", "wrong class"}
    browser.find_element(By.ID, "f-reset").click()
    choose(browser, "f-dataset", "dailydialog")
    assert shown_rows(browser) == [4, 5, 6]
    assert "dailydialog" in browser.find_element(By.CSS_SELECTOR, "#summary h2").text
    dd = gallery.scores()["dailydialog"]["emotion"]["confusion"]
    assert [int(c) for c in texts(browser, "#confusion td")] == [n for row in dd for n in row]
    browser.find_element(By.ID, "f-reset").click()
    browser.find_element(By.ID, "f-text").send_keys("DOG")   # case-insensitive text search
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 5).until(lambda d: len(shown_rows(d)) == 2)
    assert shown_rows(browser) == [1, 8]


def test_confusion_cell_lists_its_utterances(browser, gallery):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    cell = browser.find_element(By.CSS_SELECTOR, '#confusion td[data-gold="anger"][data-pred="sadness"]')
    assert cell.text == "1"
    cell.click()
    assert shown_rows(browser) == [2]
    assert Select(browser.find_element(By.ID, "f-gold")).first_selected_option.text == "anger"
    assert Select(browser.find_element(By.ID, "f-pred")).first_selected_option.text == "sadness"
    assert "active" in browser.find_element(
        By.CSS_SELECTOR, '#confusion td[data-gold="anger"][data-pred="sadness"]').get_attribute("class")


def test_row_opens_conversation_and_evidence(browser, gallery, artifacts, record_property):  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, '#rows tr.row[data-row="1"]').click()
    assert "selected" in browser.find_element(By.CSS_SELECTOR, '#rows tr.row[data-row="1"]').get_attribute("class")
    context = browser.find_elements(By.CSS_SELECTOR, "#context li")
    assert len(context) == 4 and "selected" in context[1].get_attribute("class")
    assert texts(browser, "#detail .concept-name") == ["pet", "joy", "smile", "animal shelter"]
    assert "false alarm" in browser.find_element(By.ID, "detail").text
    assert texts(browser, "#detail .dist .name.gold") == ["neutral"]     # gold marked in the probability table
    screenshot(browser, artifacts, "gallery_row.png", record_property)
    context[2].click()                                          # the context list moves through the conversation
    assert texts(browser, "#detail .concept-name") == ["sad", "cry"]


def test_a_test_split_sized_report_is_paginated(browser, tmp_path, record_property):  # noqa: F811
    from selenium.webdriver.common.by import By

    report = big_report()
    assert report.num_utterances == 2610
    page = tmp_path / "big.html"
    report.to_html(page)
    open_page(browser, page)
    record_property("first_render_ms", browser.execute_script("return window.kgemoTiming.painted"))
    assert shown_rows(browser) == list(range(50))               # only one page of rows is in the DOM
    assert browser.find_element(By.ID, "count").text == "showing 2610 of 2610 utterances"
    assert browser.find_element(By.ID, "page").text == "page 1 of 53"
    browser.find_element(By.ID, "next").click()
    assert shown_rows(browser) == list(range(50, 100))
    choose(browser, "f-error", "correct")
    correct = [i for i, e in enumerate(report.error_types("emotion")) if e == "correct"]
    assert shown_rows(browser) == correct[:50]                   # a new filter starts on page 1
    assert browser.find_element(By.ID, "count").text == f"showing {len(correct)} of 2610 utterances"
    choose(browser, "f-size", "all")
    assert shown_rows(browser) == correct


def test_markup_in_the_gallery_stays_text(browser, gallery, artifacts, record_property):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert_no_dialog(browser)
    res = xss_result()
    assert texts(browser, '#rows tr.row[data-row="4"] td.text') == [res[0].text]
    assert texts(browser, '#rows tr.row[data-row="5"] .speaker') == [res[1].speaker]
    browser.find_element(By.ID, "f-text").send_keys(XSS[0])
    WebDriverWait(browser, 5).until(lambda d: shown_rows(d) == [4, 5])
    for row in (4, 5, 6):
        browser.find_element(By.ID, "f-reset").click()
        browser.find_element(By.CSS_SELECTOR, f'#rows tr.row[data-row="{row}"]').click()
        for node in browser.find_elements(By.CSS_SELECTOR, "#detail svg .node"):
            ActionChains(browser).move_to_element(node).perform()
        assert_no_dialog(browser)
        assert_nothing_injected(browser)
    browser.find_element(By.CSS_SELECTOR, '#rows tr.row[data-row="4"]').click()
    assert texts(browser, "#detail .concept-name") == [c.concept for c in res[0].concepts]
    assert res.conversation_id in browser.find_element(By.CSS_SELECTOR, "#detail .meta").text
    assert texts(browser, "#context .speaker") == [u.speaker + ":" for u in res]
    screenshot(browser, artifacts, "gallery_escaping.png", record_property)


def test_joint_model_report_switches_task(browser, tmp_path):  # noqa: F811
    """A two-task model (emotion + sentiment): each turn shows both labels, the task selector switches the summary,
    the label filters and the rows."""
    from selenium.webdriver.common.by import By

    sentiment = label_space("meld", "sentiment")
    rows = [("Anna", "I got the job!", "joy", "positive"), ("Ben", "Oh no.", "sadness", "negative"),
            ("Anna", "Fine.", "neutral", "neutral")]
    utts = []
    for i, (speaker, text, emo, sen) in enumerate(rows):
        u = utterance(i, speaker, text, emo, 0.6)
        u.labels["sentiment"] = sen
        u.probabilities["sentiment"] = {name: (0.8 if name == sen else 0.1) for name in sentiment.labels}
        utts.append(u)
    res = AnnotationResult("j1", utts, {"name": "joint"}, ["emotion", "sentiment"])
    gold = [[{"emotion": "joy", "sentiment": "positive"}, {"emotion": "anger", "sentiment": "positive"},
             {"emotion": "neutral", "sentiment": None}]]
    report = SplitReport([res], gold, ["meld"], {"emotion": MELD, "sentiment": sentiment},
                         {"emotion": "weighted_f1", "sentiment": "weighted_f1"}, "test", "joint")
    page = tmp_path / "joint.html"
    report.to_html(page)
    open_page(browser, page)
    assert [r.get_attribute("data-label") for r in browser.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")] == \
        list(MELD.labels)
    choose(browser, "f-task", "sentiment")
    assert [r.get_attribute("data-label") for r in browser.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")] == \
        list(sentiment.labels)
    assert texts(browser, "#rows .chip.pred") == ["positive", "negative", "neutral"]
    assert texts(browser, "#rows .chip.gold") == ["positive", "positive"]          # the third has no sentiment gold
    assert texts(browser, "#rows .err") == ["correct", "wrong class", "unlabelled"]
    choose(browser, "f-gold", "positive")
    assert shown_rows(browser) == [0, 1]
    conv = tmp_path / "joint_conversation.html"
    res.to_html(conv)
    open_page(browser, conv)
    assert texts(browser, "#chat .turn:first-child .label .task") == ["emotion", "sentiment"]
    assert texts(browser, "#chat .turn:first-child .chip.pred") == ["joy", "positive"]
