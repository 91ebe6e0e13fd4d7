"""Every student notebook as a student meets it: JupyterLab in a real browser.

``make lab`` serves a temporary copy of ``lectures/``; headless Chromium (Debian's package,
driven by playwright) opens each notebook, runs all cells from the Run menu and waits for the
kernel. Then: no error output, every cell ran, every figure rendered, and in notebooks with
widgets a slider exists and moving it redraws the figure. One screenshot per notebook goes to
``.pytest_cache/d/browser-screenshots/`` (printed at the end of the run).

    make test-browser                                   # these tests (and the make-lab test)
    .venv/bin/python -m pytest tests/test_browser.py -k 01_jacobian   # one notebook

Without Chromium they are skipped with one line saying how to get it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from browser_lab import CHROMIUM, CHROMIUM_FLAGS, ROOT, Lab, copy_course

pytestmark = pytest.mark.browser

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"browser tests need Chromium at {CHROMIUM}: `sudo apt-get install chromium` "
                "(Debian/Ubuntu), then `make test-browser`", allow_module_level=True)
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip("browser tests need playwright: `make test-env` (or pip install -r requirements-test.txt)",
                allow_module_level=True)

NOTEBOOKS = sorted((ROOT / "lectures").glob("*.ipynb"))
NOTEBOOK_TIMEOUT_S = 900   # for "Run All Cells" on one notebook (nbval's cell timeout in make test)
WIDGET_TIMEOUT_S = 120     # for the figure to redraw after a slider moved

# Code that shows a widget: the course's demos (``widgets.*_widget(...)``) or ipywidgets itself.
RAN = re.compile(r"\[\d+\]:")  # the prompt of a cell that ran ("[*]:" while queued or running)
USES_WIDGETS = re.compile(r"\b\w+_widget\(|\bipywidgets\b|\binteract(ive)?\(")


def uses_widgets(path: Path) -> bool:
    cells = json.loads(path.read_text())["cells"]
    return any(USES_WIDGETS.search("".join(c["source"])) for c in cells if c["cell_type"] == "code")


# What the page shows, read in one go (the selectors are JupyterLab 4's and ipywidgets 8's).
STATE_JS = """() => {
  const cells = Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell'));
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return {
    kernel: indicator ? indicator.getAttribute('data-status') : null,
    prompts: cells.map(c => {
      const p = c.querySelector('.jp-InputPrompt');
      const src = c.querySelector('.jp-InputArea-editor .cm-content');
      return [p ? p.textContent.trim() : '', src ? src.textContent.trim().length > 0 : true];
    }),
  };
}"""

OUTPUTS_JS = """() => {
  const area = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const text = e => e.textContent.slice(0, 2000);
  return {
    errors: Array.from(area.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]')).map(text),
    widget_errors: Array.from(area.querySelectorAll('.jp-OutputArea-output')).map(text)
      .filter(t => t.includes('Error displaying widget') || t.includes('Error rendering output item')),
    images: Array.from(area.querySelectorAll('.jp-OutputArea-output img'))
      .map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    sliders: area.querySelectorAll('.jp-OutputArea-output .widget-slider').length,
  };
}"""


@pytest.fixture(scope="module")
def screenshots(request, tmp_path_factory):
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("browser-screenshots")) if cache else tmp_path_factory.mktemp("screenshots")
    yield folder
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nbrowser tests: screenshots in {folder}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("course"))
    with Lab(root, tmp_path_factory.mktemp("jupyter")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    yield page
    context.close()
    lab.shut_down_sessions()


def wait_until(predicate, timeout, what, poll=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_kernel(page, timeout):
    """Until the status bar says the notebook's kernel started and is idle ("Python 3 (ipykernel) | Idle")."""
    status = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"^(?!No Kernel).* \| Idle$"))
    status.first.wait_for(timeout=timeout * 1000)
    dialogs = page.locator(".jp-Dialog")
    assert not dialogs.count(), f"JupyterLab asks: {dialogs.first.inner_text()}"


def run_all_cells(page, timeout):
    """Run > Run All Cells, then wait until nothing is queued and the kernel is idle (twice in a row)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    wait_until(lambda: any(p == "[*]:" or RAN.fullmatch(p) for p, _ in page.evaluate(STATE_JS)["prompts"]),
               60, "the first cell to start")
    settled = []

    def done():
        state = page.evaluate(STATE_JS)
        quiet = state["kernel"] == "idle" and not any(p == "[*]:" for p, _ in state["prompts"])
        settled.append(quiet)
        return settled[-2:] == [True, True] and state

    return wait_until(done, timeout, "all cells to run and the kernel to be idle", poll=1.0)


def move_first_slider(page, timeout):
    """Press the right arrow key on the first slider; return the widget figure before and after."""
    interact = page.locator(".widget-interact", has=page.locator(".widget-slider")).first
    figure = interact.locator(".widget-output img")

    def source():
        return figure.first.get_attribute("src") if figure.count() else None

    wait_until(source, 60, "the widget's figure")
    before = source()
    interact.scroll_into_view_if_needed()
    handle = interact.locator(".widget-slider .noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    after = wait_until(lambda: (s := source()) not in (None, before) and s, timeout,
                       "the widget's figure to change after the slider moved")
    return before, after


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(page, lab, screenshots, path):
    rel = f"lectures/{path.name}"
    page.goto(f"{lab.url}/lab/workspaces/test-{path.stem}/tree/{rel}")
    shot = screenshots / f"{path.stem}.png"
    try:
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=120_000)
        wait_for_kernel(page, 120)

        state = run_all_cells(page, NOTEBOOK_TIMEOUT_S)
        out = page.evaluate(OUTPUTS_JS)
        assert not out["errors"], f"{rel}: error output in JupyterLab:\n" + "\n---\n".join(out["errors"])
        not_run = [i for i, (p, nonempty) in enumerate(state["prompts"]) if nonempty and not RAN.fullmatch(p)]
        assert not not_run, f"{rel}: code cells {not_run} did not run"
        assert not out["widget_errors"], f"{rel}: " + "\n".join(out["widget_errors"])
        assert out["images"], f"{rel}: no figure was shown"
        broken = [i for i, (complete, w, h) in enumerate(out["images"]) if not (complete and w > 0 and h > 0)]
        assert not broken, f"{rel}: figures {broken} of {len(out['images'])} did not render"
        if uses_widgets(path):
            assert out["sliders"] > 0, f"{rel}: its widget shows no slider"
            move_first_slider(page, WIDGET_TIMEOUT_S)
            again = page.evaluate(OUTPUTS_JS)
            assert not again["errors"], f"{rel}: error after moving the slider:\n" + "\n".join(again["errors"])
        else:
            page.locator(".jp-NotebookPanel .jp-OutputArea-output img").last.evaluate(
                "img => img.scrollIntoView({block: 'center'})")
        assert not page.js_errors, f"{rel}: JavaScript errors in the page: {page.js_errors}"
    finally:
        page.screenshot(path=str(shot))
