"""The course site's own Sphinx extension: what a static page of an executed notebook needs.

* **Widgets.** A cell that shows an ipywidgets ``interactive`` has, when ``site/build.py`` ran it,
  the figure for the sliders' starting values in its outputs, then the widget's view (a script tag
  that only a running kernel can bring to life). The view becomes a note saying so.
* **Formulas in docstrings.** The library's docstrings give each formula as an indented block of
  plain text in the code's letters (``log|det W|``, ``z0 . z1 / (|z0| |z1|)``). reST would read such
  a block as a quotation full of markup (``|z|`` is a substitution there); this extension makes each
  one a literal block before napoleon reads the docstring, so it is shown as written.
* **Alt texts.** Every figure of a notebook gets the short text that ``site/figure_alt.py`` stored
  in its output's metadata (the figure's titles); an image without one gets its position and
  section ("Figure 3 of 12 in section 2. Affine coupling").
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from docutils import nodes

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("The figure above is drawn for the sliders' starting values. Moving a slider redraws it "
               "in JupyterLab (download the notebook and open it with make lab); this page is static.")


def executed_notebook(app, source: Path):
    """The notebook with the outputs myst-nb shows (from the jupyter-cache), or ``None``."""
    import nbformat
    from jupyter_cache import get_cache

    try:
        _, nb = get_cache(app.config.nb_execution_cache_path).merge_match_into_notebook(
            nbformat.read(source, as_version=4))
    except KeyError:
        return None
    return nb


def image_alts(nb) -> dict[str, str]:
    """``{sha256 of the image bytes: alt}`` for every image output of an executed notebook (the name
    myst-nb gives the image file is that hash)."""
    alts = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            for mime in ("image/png", "image/jpeg"):
                if mime in output.get("data", {}):
                    raw = output["data"][mime]
                    digest = hashlib.sha256(base64.b64decode("".join(raw) if isinstance(raw, list) else raw))
                    alt = output.get("metadata", {}).get(mime, {}).get("alt", "")
                    alts[digest.hexdigest()] = alt
    return alts


def section_of(node) -> str:
    while node is not None and not isinstance(node, nodes.section):
        node = node.parent
    if node is None or not node.children or not isinstance(node[0], nodes.title):
        return ""
    return node[0].astext()


def on_doctree_read(app, doctree):
    source = Path(app.env.doc2path(app.env.docname))
    for raw in list(doctree.findall(nodes.raw)):
        if WIDGET_VIEW in raw.astext():
            note = nodes.admonition("", nodes.title(text="Interactive figure"), nodes.paragraph(text=WIDGET_NOTE),
                                    classes=["widget-note"])
            raw.replace_self(note)
    images = list(doctree.findall(nodes.image))
    if not images:
        return
    nb = executed_notebook(app, source) if source.suffix == ".ipynb" else None
    alts = image_alts(nb) if nb is not None else {}
    for i, image in enumerate(images, 1):
        if image.get("alt"):
            continue
        alt = alts.get(Path(image["uri"]).stem, "")
        if not alt or alt.startswith("Figure: a figure with"):
            section = section_of(image)
            alt = f"Figure {i} of {len(images)}" + (f" in section {section}" if section else "")
        image["alt"] = alt


SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|Attributes|"
                     r"Warnings?|See Also|References|Methods|Keyword Args|Other Parameters|Todo):\s*$")


def formulas_as_literal_blocks(app, what, name, obj, options, lines):
    """Every indented block outside napoleon's sections, after a blank line, becomes a literal block
    (``::`` before it), unless it is already one or is a doctest."""
    out, in_section, i = [], False, 0
    while i < len(lines):
        line = lines[i]
        if SECTION.match(line):
            in_section = True
        elif line and not line[0].isspace():
            in_section = False
        starts_block = (not in_section and line[:1].isspace() and line.strip() and i > 0
                        and not lines[i - 1].strip() and not line.lstrip().startswith(">>>"))
        if starts_block:
            before = next((l for l in reversed(out) if l.strip()), "")
            if not before.rstrip().endswith("::") and not before.lstrip().startswith(".."):
                out[-1:] = ["", "::", ""]
        out.append(line)
        i += 1
    lines[:] = out


COLON = "\x00colon\x00"


def hide_first_colon(app, what, name, obj, options, lines):
    """napoleon reads the first line of a constant's or attribute's docstring as ``type: text``; the
    course's never give a type there (``#: The course's Glow for the digits (notebooks 07 and 09):
    ...``), so its colons are hidden from napoleon and put back after it."""
    if what in ("data", "attribute", "property") and lines:
        lines[0] = lines[0].replace(":", COLON)


def restore_colons(app, what, name, obj, options, lines):
    lines[:] = [line.replace(COLON, ":") for line in lines]


def setup(app):
    app.connect("doctree-read", on_doctree_read)
    app.connect("autodoc-process-docstring", hide_first_colon, priority=400)
    app.connect("autodoc-process-docstring", restore_colons, priority=600)
    app.connect("autodoc-process-docstring", formulas_as_literal_blocks, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
