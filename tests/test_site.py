"""The course's website (``make site``), read as a reader reads it: offline, in Chromium.

The module's fixture runs ``make site`` once (every student notebook executed through the
jupyter-cache in ``build/site/jupyter-cache``: the first build runs them all, later builds only
the changed ones), then:

- without a browser: every notebook has a page with the box above it (what you will learn,
  prerequisites, the measured runtime, a download link to the student notebook itself), the
  executed notebooks are kept, no page names a resource on another host, and a second
  ``make site`` with nothing changed runs no notebook and takes under a minute;
- in headless Chromium (Debian's, as tests/test_browser.py), with every request that is not for a
  file of the built folder blocked and counted: every page loads with no console error and no
  blocked request, every image loads, every notebook page shows as many figures as its executed
  notebook drew, no error output, every formula typeset by MathJax (no raw ``$...$`` left), the
  search page finds "Jacobian". Screenshots of the landing page and notebook 07's page go to
  ``.pytest_cache/d/site-screenshots/``.

    .venv/bin/python -m pytest tests/test_site.py        # builds the site first (minutes the first time)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from browser_lab import CHROMIUM, CHROMIUM_FLAGS, ROOT

SITE = ROOT / "build" / "site" / "lectures"
HTML = SITE / "html"
NOTEBOOKS = sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))
BUILD_TIMEOUT_S = 3600      # the first build runs all twelve notebooks, one at a time
CACHED_BUILD_LIMIT_S = 60   # the promise for a build with nothing changed
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
# Variables of pytest's environment that must not reach make and the notebooks' kernels.
_DROP = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MPLBACKEND", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER",
         "PYTEST_XDIST_TESTRUNUID", "PYTEST_XDIST_WORKER_COUNT")


def make_site(timeout: float) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    start = time.monotonic()
    done = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "site"], env=env,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - start
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"make site failed ({done.returncode}):\n{log[-8000:]}"
    return seconds, log


@pytest.fixture(scope="module")
def site():
    seconds, log = make_site(BUILD_TIMEOUT_S)
    return {"seconds": seconds, "log": log}


def executed(stem: str) -> dict:
    return json.loads((SITE / "executed" / f"{stem}.ipynb").read_text(encoding="utf-8"))


def image_outputs(nb: dict) -> int:
    return sum(1 for cell in nb["cells"] for out in cell.get("outputs", [])
               if any(m in out.get("data", {}) for m in IMAGE_MIMES))


def pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts)


def site_build():
    """``site/build.py`` as a module (it is a script, outside the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_site_build", ROOT / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------
# Without a browser
# ------------------------------------------------------------------------------------------------
def test_readme_and_notebooks_give_every_box_its_facts():
    """What the box above each notebook says comes from the README's tables and the notebook's own
    first cell; a change of format there must not leave a box empty (no build needed)."""
    build = site_build()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    learn, bench = build.notebook_table(readme), build.bench_table(readme)
    for path in NOTEBOOKS:
        assert learn.get(path.stem), f"README's notebook table has no row for {path.stem}"
        assert re.fullmatch(r"[\d.]+", bench.get(path.stem, {}).get("seconds", "")), (
            f"README's runtime table has no time for {path.stem}")
        first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
        if not path.stem.startswith("00_"):
            prereq = build.prerequisites(first)
            assert prereq and "Runtime" not in prereq, f"{path.stem}: prerequisites read as {prereq!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_page_has_its_box(site, path):
    page = HTML / "notebooks" / f"{path.stem}.html"
    assert page.exists(), f"no page for {path.name}"
    text = page.read_text(encoding="utf-8")
    box = re.search(r'<div class="[^"]*course-info[^"]*">(.*?)</div>', text, re.S)
    assert box, f"{page.name}: no 'About this notebook' box"
    plain = re.sub(r"<[^>]+>", "", box.group(1))
    for label in ("What you will learn:", "Prerequisites:", "Runtime:", "Download:"):
        assert label in plain, f"{page.name}: the box has no '{label}'"
    assert re.search(r"Runtime: [\d.]+ s on the 2-core reference CPU", plain), plain
    assert text.find("course-info") < text.find('class="cell'), f"{page.name}: the box is not above the notebook"
    link = re.search(r'href="([^"]*_downloads/[^"]*' + re.escape(path.name) + r')"', box.group(1))
    assert link, f"{page.name}: no download link to {path.name}"
    download = (page.parent / link.group(1)).resolve()
    assert download.read_bytes() == path.read_bytes(), f"{page.name}: the download is not lectures/{path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_executed_notebook_is_kept(site, path):
    """The executed notebook (for comparing printed outputs, or reading offline in JupyterLab)."""
    nb = executed(path.stem)
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code and all(c.get("execution_count") for c in code), f"{path.stem}: not every code cell ran"
    errors = [out for c in code for out in c.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, f"{path.stem}: error output: {errors[0].get('ename')}: {errors[0].get('evalue')}"


def test_no_page_names_another_host(site):
    """Scripts, styles, fonts, images and frames come from the folder itself (links may leave it)."""
    remote = re.compile(r"""(?:src|srcset)\s*=\s*["'](?:https?:)?//|<link[^>]+href=["'](?:https?:)?//"""
                        r"""|url\(\s*["']?(?:https?:)?//|@import\s+["'](?:https?:)?//""", re.I)
    found = []
    for path in list(HTML.rglob("*.html")) + list(HTML.rglob("*.css")):
        for match in remote.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{path.relative_to(HTML)}: {match.group(0)}")
    assert not found, "resources from another host:\n" + "\n".join(found[:20])


def test_cached_build_is_quick(site):
    """A second make site with nothing changed runs no notebook and takes under a minute."""
    seconds, log = make_site(600)
    assert "running 0" in log, log[-3000:]
    assert seconds < CACHED_BUILD_LIMIT_S, f"a build with nothing changed took {seconds:.0f} s:\n{log[-3000:]}"


# ------------------------------------------------------------------------------------------------
# In Chromium, offline
# ------------------------------------------------------------------------------------------------
def _chromium():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"the site's browser tests need Chromium at {CHROMIUM}: `sudo apt-get install chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the site's browser tests need playwright: `make test-env`")
    return sync_playwright


@pytest.fixture(scope="module")
def browser(site):
    sync_playwright = _chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(request, tmp_path_factory):
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("site-screenshots")) if cache else tmp_path_factory.mktemp("site-screenshots")


class Reader:
    """One browser tab that may read only the built folder: every other request is blocked and
    remembered, every console error and page error remembered."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.blocked, self.errors = [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: r.url.startswith("file:") and
                     self.errors.append(f"failed to load {r.url}: {r.failure}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith("file://") and Path(url[7:].split("?")[0].split("#")[0]).resolve().is_relative_to(HTML):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def open(self, path: Path, query: str = ""):
        self.page.goto(path.as_uri() + query, wait_until="load")
        # MathJax 3 typesets after the load event; its promise settles when it is done.
        self.page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)",
                                    timeout=30_000)
        self.page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def reader(browser):
    r = Reader(browser)
    yield r
    r.close()


PAGE_JS = """() => {
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .cell_output').forEach(e => e.remove());
  return {
    images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.getAttribute('alt')]),
    figures: article.querySelectorAll('.cell_output img').length,
    tracebacks: Array.from(article.querySelectorAll('.output.traceback, .output.error')).map(e => e.textContent.slice(0, 500)),
    maths: article.querySelectorAll('mjx-container').length,
    mathErrors: Array.from(article.querySelectorAll('mjx-merror, [data-mjx-error]')).map(e => e.textContent || e.getAttribute('data-mjx-error')),
    text: clone.textContent,
    widgetNotes: article.querySelectorAll('.widget-note').length,
  };
}"""

RAW_MATH = re.compile(r"(?<![\\\w])\$[^$\s][^$]*\$|\\\(|\\\[|\\begin\{")


def all_pages():
    return pages() if HTML.exists() else []


def _page_id(path: Path) -> str:
    return path.relative_to(HTML).as_posix() if HTML.exists() else str(path)


def test_every_page_reads_offline(site, reader):
    """Every page of the folder: no console error, no request to another host, every image loads,
    no formula left untypeset."""
    problems = []
    for path in pages():
        name = path.relative_to(HTML).as_posix()
        reader.errors.clear()
        page = reader.open(path)
        state = page.evaluate(PAGE_JS)
        broken = [src for src, complete, width, _ in state["images"] if not (complete and width > 0)]
        raw = RAW_MATH.findall(state["text"])
        for what, bad in (("console errors", reader.errors), ("images that did not load", broken),
                          ("raw mathematics", raw[:5]), ("MathJax errors", state["mathErrors"])):
            if bad:
                problems.append(f"{name}: {what}: {bad}")
    assert not reader.blocked, "requests to another host: " + ", ".join(sorted(set(reader.blocked))[:10])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_page_shows_every_figure(site, reader, screenshots, path):
    page = reader.open(HTML / "notebooks" / f"{path.stem}.html")
    state = page.evaluate(PAGE_JS)
    nb = executed(path.stem)
    assert state["figures"] == image_outputs(nb), (
        f"{path.stem}: the page shows {state['figures']} figures, the executed notebook drew {image_outputs(nb)}")
    figures = [i for i in state["images"] if "_images/" in (i[0] or "")]
    assert all(alt and alt.strip() for *_, alt in figures), f"{path.stem}: a figure without alt text"
    broken = [src for src, complete, width, _ in state["images"] if not (complete and width > 0)]
    assert not broken, f"{path.stem}: images that did not load: {broken}"
    assert not state["tracebacks"], f"{path.stem}: error output on the page: {state['tracebacks'][0]}"
    if re.search(r"\$[^$]+\$", "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")):
        assert state["maths"] > 0, f"{path.stem}: the notebook has formulas but MathJax typeset none"
    widgets = sum(1 for c in nb["cells"] for out in c.get("outputs", [])
                  if "application/vnd.jupyter.widget-view+json" in out.get("data", {}))
    assert state["widgetNotes"] == widgets, f"{path.stem}: {widgets} widgets, {state['widgetNotes']} notes"
    assert not reader.errors, f"{path.stem}: console errors: {reader.errors}"
    assert not reader.blocked, f"{path.stem}: requests to another host: {reader.blocked[:5]}"
    if path.stem.startswith("07_"):
        page.screenshot(path=str(screenshots / "notebook_07.png"))
        page.locator(".cell_output img").nth(2).scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "notebook_07_figure.png"))


def test_landing_page(site, reader, screenshots):
    page = reader.open(HTML / "index.html")
    text = page.inner_text("article")
    for words in ("Two commands", "The notebooks", "Measured runtimes", "make lab"):
        assert words in text, f"the landing page has no '{words}'"
    links = page.eval_on_selector_all("article a[href*='notebooks/']", "as => as.map(a => a.getAttribute('href'))")
    for path in NOTEBOOKS:
        assert any(f"notebooks/{path.stem}.html" in href for href in links), f"no link to {path.stem}"
    page.screenshot(path=str(screenshots / "landing.png"), full_page=False)
    assert not reader.errors and not reader.blocked, (reader.errors, reader.blocked)


def test_search_finds_jacobian(site, reader):
    page = reader.open(HTML / "search.html", "?q=Jacobian")
    results = page.locator("#search-results li")
    results.first.wait_for(timeout=30_000)
    hrefs = page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.getAttribute('href'))")
    assert any("01_jacobian_and_determinant" in h for h in hrefs), hrefs[:10]
    assert not reader.errors and not reader.blocked, (reader.errors, reader.blocked)
