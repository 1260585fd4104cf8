#!/usr/bin/env python
"""Screenshots of the two HTML pages for the README: ``docs/report_conversation.png`` and ``docs/report_gallery.png``.

    python scripts/screenshot_report.py                     # default model; annotates the example and MELD test
    python scripts/screenshot_report.py --gallery-html meld_test.html   # reuse a page `kgemo report` wrote

The conversation page shows examples/conversation.json annotated by the default model with turn 3 open; the gallery
shows the MELD test split (default model) with the errors filtered and one row's evidence open. Needs Debian's
chromium and chromium-driver (``apt-get install chromium chromium-driver``) and selenium (the ``test`` extra).
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Flags for a headless chromium that reaches nothing: no network services, no first-run, no GPU, no sandbox
#: (containers), a fresh profile each time.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000):
    """A selenium driver for Debian's headless chromium (never downloads a browser or driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        raise SystemExit("chromium / chromedriver not found: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="kgemo-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_window_size(width, height)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path, fragment: str = "", timeout: float = 60) -> dict:
    """Load a page and wait for its first render; returns the page's ``window.kgemoTiming``."""
    driver.get("about:blank")  # a new fragment alone would not reload the page
    driver.get(Path(path).resolve().as_uri() + fragment)
    deadline = time.time() + timeout
    while driver.execute_script("return document.body && document.body.getAttribute('data-ready')") != "1":
        if time.time() > deadline:
            raise TimeoutError(f"{path}: the page did not finish its first render in {timeout} s")
        time.sleep(0.01)
    return driver.execute_script("return window.kgemoTiming")


def conversation_page(out: Path, model: str) -> tuple[Path, int]:
    """The example's page and the turn to open in it (1-based): the first with concept evidence."""
    from kgemo import Annotator
    from kgemo.annotate import read_conversations

    res = Annotator.from_pretrained(model).annotate(read_conversations(ROOT / "examples" / "conversation.json")[0])
    res.to_html(out)
    return out, next((i + 1 for i, u in enumerate(res) if u.concepts), 1)


def gallery_page(out: Path, model: str, dataset: str, split: str) -> Path:
    from kgemo.annotate.split_report import SplitReport

    SplitReport.from_model(model, split, datasets=[dataset]).to_html(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--dataset", default="meld")
    p.add_argument("--split", default="test")
    p.add_argument("--gallery-html", type=Path, help="an existing gallery page (skips annotating the split)")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        conv, turn = conversation_page(Path(tmp) / "conversation.html", args.model)
        gallery = args.gallery_html or gallery_page(Path(tmp) / "gallery.html", args.model, args.dataset, args.split)
        with chromium(1400, 900) as driver:
            open_page(driver, conv, f"#turn={turn}")
            driver.save_screenshot(str(args.out / "report_conversation.png"))
            driver.set_window_size(1400, 1250)
            # The gallery: errors only, one "missed" utterance's conversation and evidence open.
            open_page(driver, gallery, "#error=errors")
            row = driver.execute_script("return document.querySelector('#rows tr.row').getAttribute('data-row')")
            open_page(driver, gallery, f"#error=errors&row={row}")
            driver.save_screenshot(str(args.out / "report_gallery.png"))
    for name in ("report_conversation.png", "report_gallery.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
