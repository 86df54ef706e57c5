"""The Space end to end in a real browser: headless Debian Chromium driven by Playwright, the embedded prospector.

The page is served on localhost; the browser uploads the shipped sample, runs the default prospecting (the shipped
task set, 8 tasks) on its first 16 rows, waits for the histogram and the table, checks the rendered values against
the scored file it downloads, and saves a screenshot (also copied to /tmp/space_screenshot.png).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROWS = 16
NUM_TASKS = 8
SCREENSHOT_COPY = Path("/tmp/space_screenshot.png")

# `make browser` installs chromium; CI sets HF_NUGGETS_REQUIRE_BROWSER=1 so that a missing browser fails the run.
REQUIRED = os.environ.get("HF_NUGGETS_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        raise RuntimeError(f"HF_NUGGETS_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason, allow_module_level=True)


if not CHROMIUM.is_file():
    _unavailable(f"Debian's chromium is not installed at {CHROMIUM} (`make browser` or apt-get install -y chromium)")
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    _unavailable("the playwright Python package is not installed (pip install playwright)")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prospector_cache_limits_restored")]


@pytest.fixture(scope="module")
def space_url():
    """The Space as `python spaces/app.py` serves it (embedded prospector), on a local port."""
    demo = importlib.import_module("app").build_demo()  # spaces/ is on pytest's pythonpath, as a Space runs it
    _, url, _ = demo.queue().launch(prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


def test_browser_uploads_prospects_and_shows_the_results(space_url, tmp_path):
    """Upload the sample, prospect 16 rows against 8 tasks, and check the histogram, table, stats and download."""
    from hf_nuggets.data.loading import sample_dataset_path

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900}, accept_downloads=True)
            page.goto(space_url)
            page.locator("#data-upload input[type=file]").set_input_files(str(sample_dataset_path()))
            page.wait_for_selector("#data-status [data-kind=ok]", timeout=60_000)
            assert "300 rows" in page.locator("#data-status").inner_text()

            rows = page.locator("#rows input[type=number]")
            rows.fill(str(ROWS))
            rows.press("Enter")
            # This test checks the results, not the pace: with the longest budget a busy machine scores all 16 rows
            # too (with a load average of 8 on the 2 cores, the default 120 s stopped the run early).
            budget = page.locator("#seconds input[type=number]")
            budget.fill("600")
            budget.press("Enter")
            started = time.perf_counter()
            page.locator("#run").click()
            page.wait_for_selector("#nug-histogram .nug-bin", timeout=240_000)
            first_result_s = time.perf_counter() - started
            page.wait_for_selector("#run-status [data-kind=ok]", timeout=480_000)
            total_s = time.perf_counter() - started
            page.wait_for_timeout(500)  # let the last render settle for the screenshot

            status = page.locator("#run-status").inner_text()
            assert f"{ROWS} of {ROWS} rows scored against {NUM_TASKS} tasks" in status

            # The histogram: one bar per score k/8, its counts sum to the rows no gate flagged.
            bins = page.locator("#nug-histogram .nug-bin")
            assert bins.count() == NUM_TASKS + 1
            counts = [int(bins.nth(i).get_attribute("data-count")) for i in range(bins.count())]
            labels = [bins.nth(i).get_attribute("data-bin") for i in range(bins.count())]
            assert labels == [f"{k}/{NUM_TASKS}" for k in range(NUM_TASKS + 1)]

            # The scored data, downloaded as a visitor would.
            with page.expect_download() as download:
                page.locator("#dl-jsonl").click()
            assert download.value.suggested_filename == "scored.jsonl"
            scored = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
            assert len(scored) == ROWS
            scores = [row["golden_score"] for row in scored]
            unflagged = [i for i, row in enumerate(scored) if not row["nuggets_flags"]]
            assert sum(counts) == len(unflagged) and 0 < len(unflagged) < ROWS  # the first 16 rows hold flawed ones
            assert counts == [sum(round(scores[i] * NUM_TASKS) == k for i in unflagged) for k in range(NUM_TASKS + 1)]
            flagged = ROWS - len(unflagged)
            assert page.locator("[data-stat=flagged] .v").inner_text().startswith(f"{flagged} row")

            # The table: every row (16 <= 20), ranked; the first row is the best-scored unflagged row of the file.
            table = page.locator("#results-table [role=grid]")
            assert table.get_attribute("aria-rowcount") == str(ROWS + 1)
            cell = lambda r, c: page.locator(f"#results-table [data-testid='cell-{r}-{c}']").inner_text().strip()  # noqa: E731
            best = max(unflagged, key=lambda i: (scores[i], scored[i]["nuggets_gain"], -i))
            assert cell(0, 0) == "1" and int(cell(0, 1)) == best
            assert float(cell(0, 2)) == pytest.approx(scores[best], abs=1e-4)
            assert cell(0, 4) == scored[best]["instruction"][:159].strip() or cell(0, 4).endswith("…")

            # The stats cards and the flaw report of the sample.
            assert page.locator("[data-stat=rows] .v").inner_text() == f"{ROWS} / {ROWS}"
            assert float(page.locator("[data-stat=mean] .v").inner_text()) == pytest.approx(
                sum(scores) / ROWS, abs=5e-4
            )
            assert "Rows marked as flawed" in page.locator("#stats").inner_text()
            assert "Traceback" not in page.content()

            shot = tmp_path / "space.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    shutil.copyfile(shot, SCREENSHOT_COPY)
    print(f"\nfirst results after {first_result_s:.1f} s, done after {total_s:.1f} s; screenshot {shot}")


CODE = "def square(x):\n    return x * x"


def first_upload_files(folder: Path) -> list[tuple[Path, str, str]]:
    """What a new visitor uploaded one after the other (issue 15): each file, the kind of message it gives in the
    status box, and a text of that message."""
    latin = folder / "latin1.jsonl"
    record = json.dumps({"instruction": "Say coffee in French.", "output": "Café."}, ensure_ascii=False)
    latin.write_bytes((record + "\n").encode("latin-1"))
    one = folder / "one.jsonl"
    one.write_text(json.dumps({"instruction": "Name a colour.", "output": "Red."}) + "\n")
    empty = folder / "empty.jsonl"
    empty.write_text("")
    return [
        (latin, "error", "`latin1.jsonl`, line 1: byte 0xe9 is not UTF-8"),
        (one, "ok", "one.jsonl: 1 row,"),
        (empty, "error", "`empty.jsonl` is empty"),
    ]


def upload(page, path: Path) -> None:
    """Upload `path` in the data upload box, clearing the file shown there first, as a visitor does."""
    if page.locator("#data-upload input[type=file]").count() == 0:
        page.locator("#data-upload button[aria-label='Clear']").first.click()
    page.locator("#data-upload input[type=file]").set_input_files(str(path))


def test_browser_bad_uploads_are_messages_and_the_page_recovers(space_url, tmp_path):
    """A non-UTF-8 file, a one-row file and an empty file, uploaded one after the other, each give a one-line
    message in the status box and no error badge anywhere; a file of code shows its line breaks in the preview,
    and the sample uploaded next loads, with the default rows."""
    from playwright.sync_api import expect

    from hf_nuggets.data.loading import sample_dataset_path

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(space_url)
            page.wait_for_selector("#data-status")
            default_rows = page.locator("#rows input[type=number]").input_value()
            status = page.locator("#data-status")
            for path, kind, text in first_upload_files(tmp_path):
                upload(page, path)
                expect(status.locator(f"[data-kind={kind}]")).to_contain_text(text, timeout=30_000)
                assert "\n" not in status.inner_text().strip(), status.inner_text()
                assert page.locator(".error").count() == 0, f"error badges after {path.name}"
                if path.name == "one.jsonl":
                    assert page.locator("#rows input[type=number]").input_value() == "1"
            code = tmp_path / "code.jsonl"
            code.write_text(json.dumps({"instruction": "Square a number in Python.", "output": CODE}) + "\n")
            upload(page, code)
            expect(status.locator("[data-kind=ok]")).to_contain_text("code.jsonl: 1 row,", timeout=30_000)
            assert page.locator(".nug-preview [data-testid='cell-0-1']").inner_text() == CODE  # its line breaks kept
            upload(page, sample_dataset_path())
            expect(status.locator("[data-kind=ok]")).to_contain_text("300 rows", timeout=30_000)
            assert page.locator(".error").count() == 0
            assert page.locator("#rows input[type=number]").input_value() == default_rows
            assert page.locator(".nug-preview").first.is_visible()
        finally:
            browser.close()
