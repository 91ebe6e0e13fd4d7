"""Build the course's website: ``make site`` (student notebooks) or ``make site SITE=solutions``.

Three steps, each of which does nothing when nothing changed:

1. **Sources.** Write the Sphinx sources into ``OUT/src``: the landing page (sections of the
   README), one page per notebook of the chosen folder, with a box above it (what you will learn,
   prerequisites, measured runtime, a download link), and the API reference of ``course_utils``.
   A file is written only when its text changed, so Sphinx re-reads only what changed.
2. **Execution.** Every notebook is looked up in the jupyter-cache (``build/site/jupyter-cache``,
   shared by both sites) by the hash of its code cells; only a notebook that is not there is run,
   top to bottom, in a fresh kernel of this environment (``--jobs`` at a time), and stored. Markdown
   edits never cause a run. A cell that raises fails the build and prints the traceback.
3. **Sphinx** (``-n -W``: every reference must resolve, every warning fails) with myst-nb in
   ``nb_execution_mode = "cache"``: it takes each notebook's outputs from the same cache. HTML goes
   to ``OUT/html``; each executed notebook, outputs included, to ``OUT/executed/``.

    .venv/bin/python site/build.py                      # build/site/lectures/html
    .venv/bin/python site/build.py --site solutions     # build/site/solutions/html
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent
ROOT = SITE_DIR.parent
CACHE = ROOT / "build" / "site" / "jupyter-cache"

#: The API reference: one page per module, in the README's order (tools for instructors and the
#: exercise checks are left out: they are not what a notebook calls).
API_MODULES = [
    ("course_utils.device", "seeds, device, CPU threads, timing"),
    ("course_utils.train", "training loop and verdicts"),
    ("course_utils.data", "offline data sets and toy densities"),
    ("course_utils.nets", "the MLP builder"),
    ("course_utils.flows", "every flow layer, by family"),
    ("course_utils.flows.base", "containers and base distributions"),
    ("course_utils.flows.coupling", "NICE and RealNVP couplings"),
    ("course_utils.flows.planar", "planar flows"),
    ("course_utils.flows.planar_vi", "planar variational inference"),
    ("course_utils.flows.normalization", "batch norm and ActNorm"),
    ("course_utils.flows.glow", "squeeze, 1x1 convolutions, Glow"),
    ("course_utils.flows.iresnet", "invertible residual networks"),
    ("course_utils.flows.emerging", "emerging convolutions"),
    ("course_utils.flows.models", "builders"),
    ("course_utils.flows.losses", "losses and gap reports"),
    ("course_utils.siren", "SIREN"),
    ("course_utils.gon", "Gradient Origin Networks"),
    ("course_utils.plot", "figures"),
    ("course_utils.widgets", "interactive demos"),
    ("course_utils.linalg", "small linear algebra"),
]


# ------------------------------------------------------------------------------------------------
# Reading the README
# ------------------------------------------------------------------------------------------------
def readme_sections(text: str) -> list[tuple[str, str]]:
    """``[(title, body), ...]`` for each ``## `` section (the first has title ``""``); headings
    inside fenced code blocks are text, not sections."""
    sections, title, lines, fence = [], "", [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence):
            fence = None
        if fence is None and line.startswith("## "):
            sections.append((title, "\n".join(lines).strip("\n")))
            title, lines = line[3:].strip(), []
        else:
            lines.append(line)
    sections.append((title, "\n".join(lines).strip("\n")))
    return sections


def table_rows(body: str) -> list[list[str]]:
    """The cells of every row of the first Markdown table in ``body`` (header and rule left out)."""
    rows = [line for line in body.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    return [r for r in cells[2:] if r]


def notebook_table(readme: str) -> dict[str, str]:
    """``{notebook stem: what you learn}`` from the README's table of notebooks."""
    for title, body in readme_sections(readme):
        if title.lower().startswith("the notebooks"):
            return {row[1].strip("`"): row[2] for row in table_rows(body) if len(row) >= 3}
    return {}


def bench_table(readme: str) -> dict[str, dict]:
    """``{notebook stem: {"seconds", "device", "date"}}`` from the README's runtime table (CPU rows)."""
    match = re.search(r"<!-- bench:notebooks:start -->(.*?)<!-- bench:notebooks:end -->", readme, re.S)
    out = {}
    for row in table_rows(match.group(1)) if match else []:
        if len(row) >= 6 and row[0] not in out:
            out[row[0]] = {"seconds": row[1], "device": row[4], "date": row[5]}
    return out


def prerequisites(first_cell: str) -> str:
    """The notebook's own ``**Prerequisites:** ...`` paragraph (up to the next bold label)."""
    match = re.search(r"\*\*Prerequisites:?\*\*:?\s*(.*?)(?=\n\s*\n|\s\*\*[A-Z][^*]*:?\*\*|\Z)", first_cell, re.S)
    return " ".join(match.group(1).split()) if match else ""


# ------------------------------------------------------------------------------------------------
# Writing the sources
# ------------------------------------------------------------------------------------------------
def write_if_changed(path: Path, content: str | bytes) -> bool:
    """Write only when the content differs, so that Sphinx (which compares modification times)
    re-reads only the pages whose sources changed."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def header_cell(stem: str, learn: str, prereq: str, bench: dict | None, folder: str) -> str:
    runtime = (f"{bench['seconds']} s on the 2-core reference CPU ({bench['device']}, measured with "
               f"`make bench` on {bench['date']}); the outputs below are from one run of this notebook"
               if bench else "not measured yet")
    who = ("the student notebook, with the exercises to fill in" if folder == "lectures"
           else "the instructors' notebook, with the exercises solved")
    lines = [":::{admonition} About this notebook", ":class: course-info", ""]
    if learn:
        lines += [f"**What you will learn:** {learn}", ""]
    lines += [f"**Prerequisites:** {prereq or 'basic PyTorch and calculus, as for the whole course'}", ""]
    lines += [f"**Runtime:** {runtime}.", "",
              f"**Download:** {{download}}`{stem}.ipynb <../download/{stem}.ipynb>` ({who}; "
              "open it in JupyterLab with `make lab`, where the figures are drawn live and the "
              "sliders move).", ":::"]
    return "\n".join(lines)


def notebook_page(path: Path, learn: str, bench: dict | None, folder: str) -> str:
    """The notebook with the box inserted under its title (markdown only: the code cells, and so
    the cache's hash, are the notebook's own)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = nb["cells"][0] if nb["cells"] else None
    source = "".join(first["source"]) if first and first["cell_type"] == "markdown" else ""
    box = header_cell(path.stem, learn, prerequisites(source), bench, folder)
    box_cell = {"cell_type": "markdown", "id": "site-about", "metadata": {}, "source": box}
    lines = source.split("\n")
    if lines and lines[0].startswith("# "):
        title = {"cell_type": "markdown", "id": "site-title", "metadata": {}, "source": lines[0]}
        first["source"] = "\n".join(lines[1:]).lstrip("\n")
        nb["cells"][0:0] = [title, box_cell]
    else:
        nb["cells"].insert(0, box_cell)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def landing_page(readme: str, notebooks: list[Path], folder: str) -> str:
    """The README's opening, its two commands, the notebook table (linked to the pages), the
    runtime tables and the references."""
    sections = readme_sections(readme)
    keep = ("", "two commands", "the notebooks", "measured runtimes", "references")
    stems = {p.stem for p in notebooks}
    parts = []
    for title, body in sections:
        if not any(title.lower().startswith(k) for k in keep if k) and title != "":
            continue
        if title == "":
            body = body.replace("\n# ", "\n# ").strip()
            body = re.sub(r"\A# .*\n", "", body).strip()
            parts.append(f"# Flow models and implicit networks\n\n{body}")
            continue
        if title.lower().startswith("the notebooks"):
            body = re.sub(r"`(\d\d_[a-z0-9_]+)`",
                          lambda m: f"[{m.group(1)}](notebooks/{m.group(1)}.ipynb)" if m.group(1) in stems
                          else f"`{m.group(1)}`", body)
        body = re.sub(r"<!--.*?-->\n?", "", body, flags=re.S)
        parts.append(f"## {title}\n\n{body}")
    text = "\n\n".join(parts)
    # Links to sections that are not on this page (the README's others) become plain text.
    anchors = {slug(t) for t, _ in sections if any(t.lower().startswith(k) for k in keep if k)}
    text = re.sub(r"\[([^\]]+)\]\(#([^)]+)\)",
                  lambda m: m.group(0) if m.group(2) in anchors else m.group(1), text)
    version = ("This is the **instructors' version** of the site: the notebooks of `solutions/`, with "
               "the exercises solved. Do not publish it." if folder == "solutions" else
               "This site shows every student notebook of the course executed once, with its figures, "
               "and the API reference of `course_utils`. It needs no network: every script, font and "
               "formula renderer is in the folder.")
    toc = ["", "```{toctree}", ":caption: Notebooks", ":maxdepth: 1", ""]
    toc += [f"notebooks/{p.stem}" for p in notebooks] + ["```", "",
                                                         "```{toctree}", ":caption: Library", ":maxdepth: 1", "",
                                                         "api/index", "```", ""]
    first_break = text.find("\n## ")
    return text[:first_break] + f"\n\n{version}\n" + text[first_break:] + "\n" + "\n".join(toc)


def slug(title: str) -> str:
    """MyST's heading anchor (``myst_heading_anchors``): lower case, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return s.replace(" ", "-")


def api_pages() -> dict[str, str]:
    pages = {}
    index = ["# API reference: `course_utils`", "",
             "The library the notebooks share, one module per family of ideas. Every public function and "
             "class has a docstring with the formula, the paper (the lecture's reference number), the "
             "arguments and an example, which `make test` runs.", "",
             "| module | what is in it |", "|---|---|"]
    for module, what in API_MODULES:
        index.append(f"| [`{module}`]({module}.md) | {what} |")
        # The package course_utils.flows re-exports its modules' members: its page has only its
        # docstring, and each member is documented once, on its module's page.
        options = "" if module == "course_utils.flows" else "   :members:\n   :undoc-members:\n   :show-inheritance:\n"
        pages[f"api/{module}.md"] = f"# `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}\n{options}```\n"
    index += ["", "```{toctree}", ":hidden:", ""] + [m for m, _ in API_MODULES] + ["```", ""]
    pages["api/index.md"] = "\n".join(index)
    return pages


def write_sources(folder: str, src: Path, only: str = "[0-9][0-9]_*") -> list[Path]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    learn, bench = notebook_table(readme), bench_table(readme)
    notebooks = sorted((ROOT / folder).glob(only + ".ipynb"))
    wanted = {"index.md": landing_page(readme, notebooks, folder)}
    for path in notebooks:
        wanted[f"notebooks/{path.name}"] = notebook_page(path, learn.get(path.stem, ""), bench.get(path.stem),
                                                         folder)
        wanted[f"download/{path.name}"] = path.read_bytes()
    wanted.update(api_pages())
    changed = [name for name, content in wanted.items() if write_if_changed(src / name, content)]
    for old in src.rglob("*"):   # a notebook or page that no longer exists
        if old.is_file() and old.relative_to(src).as_posix() not in wanted:
            old.unlink()
    print(f"site: {len(wanted)} sources in {src} ({len(changed)} written)", flush=True)
    return [src / "notebooks" / p.name for p in notebooks]


# ------------------------------------------------------------------------------------------------
# Executing into the cache
# ------------------------------------------------------------------------------------------------
def execute(path: str, timeout: int) -> tuple[str, dict | None, float, str | None]:
    """Run one notebook top to bottom in a fresh kernel of this environment (a worker process)."""
    import tempfile

    import nbformat
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    hook = SITE_DIR / "figure_alt.py"

    class CurrentEnvSpecs(KernelSpecManager):
        """Every kernel name means this environment's Python (as ``make grade``)."""

        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="course site", language="python", metadata={})

    class Client(NotebookClient):
        def __init__(self, nb, **kw):
            super().__init__(nb, **kw)
            # No client-side widget models (as `make grade`, nbclient issue 312): the figure an
            # `interactive` draws lands in the cell's own outputs, where a static page shows it,
            # and a loaded machine never stalls on the model's reply.
            self.widget_registry = {}

        def create_kernel_manager(self):
            self.km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnvSpecs(),
                                         config=self.config)
            return self.km

    nb = nbformat.read(path, as_version=4)
    kernelspec = nb.metadata.get("kernelspec")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        # The kernel runs figure_alt.py before the first cell (it adds alt texts to figure outputs).
        hook_line = f"exec(compile(open({str(hook)!r}).read(), {str(hook)!r}, 'exec'), {{}})"
        # record_timing=False: no timing in the cells' metadata, which the cache's hash covers.
        client = Client(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}},
                        extra_arguments=[f"--IPKernelApp.exec_lines={hook_line}"], record_timing=False)
        try:
            client.execute(env=env)
        except (CellExecutionError, CellTimeoutError):
            return path, None, time.perf_counter() - start, traceback.format_exc()
    if kernelspec is not None:   # the cache finds a notebook by its code cells and kernelspec
        nb.metadata["kernelspec"] = kernelspec
    return path, nb, time.perf_counter() - start, None


def execute_missing(pages: list[Path], jobs: int, timeout: int) -> None:
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(CACHE))
    missing = []
    for page in pages:
        try:
            cache.match_cache_notebook(nbformat.read(page, as_version=4))
        except KeyError:
            missing.append(page)
    print(f"site: {len(pages) - len(missing)} of {len(pages)} notebooks in the cache ({CACHE}); "
          f"running {len(missing)}" + (f", {jobs} at a time" if missing else ""), flush=True)
    failed = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(execute, str(p), timeout) for p in missing]
        for future in concurrent.futures.as_completed(futures):
            path, nb, seconds, error = future.result()
            name = Path(path).stem
            if error is not None:
                error = re.sub(r"\x1b\[[0-9;]*m", "", error)   # the traceback's colours
                print(f"site: {name} FAILED after {seconds:.0f} s:\n{error}", flush=True)
                failed.append(name)
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            cache.match_cache_notebook(nbformat.read(path, as_version=4))   # myst-nb will find it
            print(f"site: ran {name} in {seconds:.0f} s", flush=True)
    if failed:
        raise SystemExit(f"site: {len(failed)} notebook(s) raised an error: {', '.join(failed)}")


def export_executed(pages: list[Path], folder: Path) -> None:
    """Each notebook as the site shows it, outputs included, in ``folder`` (to open in JupyterLab, or
    to compare what the lectures and the solutions print): the cache keeps only code cells."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(CACHE))
    for page in pages:
        _, nb = cache.merge_match_into_notebook(nbformat.read(page, as_version=4))
        write_if_changed(folder / page.name, nbformat.writes(nb) + "\n")
    for old in folder.glob("*.ipynb"):
        if old.name not in {p.name for p in pages}:
            old.unlink()


# ------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default="lectures", choices=["lectures", "solutions"],
                        help="which notebooks: the students' (lectures, default) or the instructors' (solutions)")
    parser.add_argument("--out", type=Path, help="build folder (default build/site/SITE)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at a time")
    parser.add_argument("--timeout", type=int, default=900, help="seconds one cell may run")
    parser.add_argument("--only", default="[0-9][0-9]_*", help="notebooks whose name matches this glob "
                        "(e.g. '0[01]*'; for a quick look at a few pages)")
    args = parser.parse_args(argv)
    out = (args.out or ROOT / "build" / "site" / args.site).resolve()
    start = time.perf_counter()
    pages = write_sources(args.site, out / "src", args.only)
    execute_missing(pages, args.jobs, args.timeout)
    export_executed(pages, out / "executed")

    from sphinx.cmd.build import build_main

    os.environ["COURSE_SITE"] = args.site
    os.environ["COURSE_SITE_CACHE"] = str(CACHE)
    code = build_main(["-b", "html", "-n", "-W", "--keep-going", "-q", "-c", str(SITE_DIR),
                       "-d", str(out / "doctrees"), str(out / "src"), str(out / "html")])
    if code == 0:
        print(f"site: {out / 'html' / 'index.html'} ({time.perf_counter() - start:.0f} s); executed "
              f"notebooks in {out / 'executed'}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
