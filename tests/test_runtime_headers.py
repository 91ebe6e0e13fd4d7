"""Every notebook's header states its CPU runtime as the README's bench table measured it.

``make bench`` times every solution notebook on the idle 2-core reference machine and writes the
README's table; a header that says "**Runtime:** about 50 s" must agree with that table (within a
quarter, or 10 s for short notebooks), so a student knows what to expect and the figure cannot go
stale unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
STATED = re.compile(r"\*\*Runtime:\*\*\s*about\s+(?:(\d+(?:\.\d+)?)\s*(s|seconds|min|minutes?)\b|(a|one|two)\s+minutes?)", re.I)
WORDS = {"a": 1, "one": 1, "two": 2}


def bench_seconds() -> dict[str, float]:
    """``{notebook: seconds}`` from the README's table, CPU rows only."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- bench:notebooks:start -->")[1].split("<!-- bench:notebooks:end -->")[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[4].startswith("cpu") and re.fullmatch(r"\d+(\.\d+)?", cells[1]):
            rows[cells[0]] = float(cells[1])
    return rows


def stated_seconds(notebook: str, folder: str = "solutions") -> float | None:
    nb = nbformat.read(ROOT / folder / f"{notebook}.ipynb", as_version=4)
    for cell in nb.cells[:4]:
        if cell.cell_type == "markdown" and (m := STATED.search(cell.source)):
            if m.group(1):
                value = float(m.group(1))
                return value * 60 if m.group(2).lower().startswith("min") else value
            return 60.0 * WORDS[m.group(3).lower()]
    return None


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_header_runtime_comes_from_the_bench_table(notebook):
    measured = bench_seconds().get(notebook)
    assert measured is not None, f"{notebook} has no CPU row in the README's bench table: run make bench"
    stated = stated_seconds(notebook)
    assert stated is not None, (f"{notebook}: the header should say '**Runtime:** about N s on a 2-core CPU' "
                                "(from the README's bench table)")
    assert abs(stated - measured) <= max(0.25 * measured, 10.0), (
        f"{notebook}: the header says about {stated:g} s, the bench table measured {measured:g} s")
    assert stated_seconds(notebook, "lectures") == stated
