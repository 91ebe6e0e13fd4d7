"""Time every solution notebook, and write the README's runtime tables (``make bench``).

    python tests/bench_notebooks.py                            # print the notebook table
    python tests/bench_notebooks.py --readme README.md --flows # make bench: both tables into README
    python tests/bench_notebooks.py --readme README.md '0[01]*'    # only notebooks 00 and 01

Each notebook runs once, top to bottom, in a fresh kernel of this environment (jupyter_client),
working in a temporary folder that holds a copy (the repository's notebooks stay untouched). Its time is the
wall time from starting the kernel to the last cell's reply; the slowest cell is named by its
execution count and first line. Rows are per notebook and device kind (CPU, CUDA, MPS): a run
replaces only the rows it measured, so a subset or a GPU run keeps the others, each with its own
device and date. ``--flows`` also runs ``tests/bench_flows.py`` (every flow layer, forward and
inverse) into the second table. The README holds the tables between the markers
``<!-- bench:notebooks:start -->`` / ``<!-- bench:notebooks:end -->`` and
``<!-- bench:flows:start -->`` / ``<!-- bench:flows:end -->``.

A benchmark, not a test: the file name does not start with ``test_``. Run it on an otherwise
idle machine; it prints the load average it started with.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
CELL_TIMEOUT_S = 900  # as make test's --nbval-cell-timeout

NOTEBOOK_HEADER = ["| notebook | seconds | slowest cell | its seconds | device | date |",
                   "|---|---:|---|---:|---|---|"]


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def device_label() -> str:
    """The device the notebooks pick (``course_utils.device.get_device``), e.g. ``cpu (x86_64, 2 cores)``."""
    from course_utils.device import environment_report, get_device

    device = get_device()
    report = environment_report(device)
    if device.type == "cpu":
        return f"cpu ({report['device name']}, {os.cpu_count()} cores)"
    return f"{device.type} ({report['device name']})"


def first_line(source: str, width: int = 40) -> str:
    lines = [l.strip() for l in source.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    line = next((l for l in lines if not l.startswith("%")), lines[0] if lines else "")
    line = line.replace("`", "'").replace("|", "\\|")
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


class NotebookFailed(Exception):
    pass


def run_notebook(path: Path) -> dict:
    """Execute the code cells of ``path`` in a fresh kernel whose working folder is a temporary
    copy's; its total and slowest-cell wall times in seconds.

    The cells go one by one through jupyter_client's ``execute_interactive`` (which waits for the
    reply and for the kernel to be idle): nbclient's Output-widget model can lose the wake-up for a
    cell that shows an ipywidgets ``interactive``, which then waits out its whole cell timeout
    (900 s on notebook 01; nbclient issue 312, see ``course_utils.grade._GradingClient``).
    """
    from jupyter_client.manager import start_new_kernel

    errors = []

    def on_output(msg):
        if msg["header"]["msg_type"] == "error":
            errors.append("\n".join(msg["content"]["traceback"]))

    nb = nbformat.read(path, as_version=4)
    cells = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        shutil.copy(path, Path(tmp) / path.name)
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3", cwd=tmp)
        try:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                t = time.perf_counter()
                try:
                    reply = kc.execute_interactive(cell.source, timeout=CELL_TIMEOUT_S, output_hook=on_output,
                                                   allow_stdin=False)
                except TimeoutError:
                    raise NotebookFailed(f"cell {index} ran longer than {CELL_TIMEOUT_S} s") from None
                if reply["content"]["status"] != "ok":
                    raise NotebookFailed(f"cell {index}:\n" + "\n".join(errors))
                cells.append((time.perf_counter() - t, index, reply["content"]["execution_count"]))
            total = time.perf_counter() - t0
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    seconds, index, count = max(cells)
    return {"notebook": path.stem, "seconds": total, "slowest": f"[{count}] {first_line(nb.cells[index].source)}",
            "slowest_seconds": seconds}


def row(result: dict, device: str, date: str) -> str:
    return (f"| {result['notebook']} | {result['seconds']:.1f} | `{result['slowest']}` | "
            f"{result['slowest_seconds']:.1f} | {device} | {date} |")


def row_key(line: str) -> tuple[str, str]:
    """(notebook, device kind) of a table row: the rows a new measurement replaces."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return cells[0], cells[-2].split(" ")[0] if len(cells) >= 2 else ""


def between(text: str, name: str) -> tuple[int, int]:
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"README needs one '{start}' and, below it, one '{end}' line")
    return text.index(start) + len(start), text.index(end)


def merge_notebook_rows(text: str, new_rows: list[str], existing: set[str]) -> str:
    """The notebook table with ``new_rows`` in place of the rows of the same notebook and device
    kind; rows of notebooks that no longer exist are dropped; sorted by notebook."""
    a, b = between(text, "notebooks")
    rows = {}
    for line in text[a:b].splitlines():
        if line.startswith("| ") and not line.startswith(NOTEBOOK_HEADER[0][:12]):
            key = row_key(line)
            if key[0] in existing:
                rows[key] = line
    for line in new_rows:
        rows[row_key(line)] = line
    table = "\n".join(NOTEBOOK_HEADER + [rows[k] for k in sorted(rows)])
    return text[:a] + "\n" + table + "\n" + text[b:]


def replace_block(text: str, name: str, block: str) -> str:
    a, b = between(text, name)
    return text[:a] + "\n" + block.strip("\n") + "\n" + text[b:]


def flows_table(device: str, date: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "bench_flows.py")], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    return f"Measured on {device}, {date} (`make bench`).\n\n{out.strip()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("globs", nargs="*", default=["*"],
                        help="which solution notebooks, as file-name patterns (default: all)")
    parser.add_argument("--readme", type=Path, help="write the tables into this README (between the markers)")
    parser.add_argument("--flows", action="store_true", help="also time every flow layer (tests/bench_flows.py)")
    args = parser.parse_args(argv)

    notebooks = sorted(p for p in SOLUTIONS.glob("*.ipynb")
                       if any(fnmatch.fnmatch(p.name, g) or fnmatch.fnmatch(p.stem, g) for g in args.globs))
    if not notebooks:
        raise SystemExit(f"no solution notebook matches {args.globs}")
    device, date = device_label(), datetime.date.today().isoformat()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench: {len(notebooks)} notebook(s) on {device}; load average at start {load:.2f}", flush=True)

    rows, failed = [], []
    for path in notebooks:
        try:
            result = run_notebook(path)
        except NotebookFailed as error:
            failed.append(path.stem)
            print(f"{path.stem}: FAILED, not timed\n{str(error)[-2000:]}", flush=True)
            continue
        rows.append(row(result, device, date))
        print(f"{path.stem}: {result['seconds']:.1f} s (slowest {result['slowest']}: "
              f"{result['slowest_seconds']:.1f} s)", flush=True)
    flows = flows_table(device, date) if args.flows else None

    print("\n".join(NOTEBOOK_HEADER + rows))
    if flows:
        print("\n" + flows)
    if args.readme:
        text = args.readme.read_text()
        text = merge_notebook_rows(text, rows, {p.stem for p in SOLUTIONS.glob("*.ipynb")})
        if flows:
            text = replace_block(text, "flows", flows)
        args.readme.write_text(text)
        print(f"bench: wrote {args.readme}")
    if failed:
        print(f"bench: {len(failed)} notebook(s) failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
