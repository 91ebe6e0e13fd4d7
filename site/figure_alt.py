"""Run in the kernel before a notebook's first cell when ``make site`` executes it (not in JupyterLab).

It gives every matplotlib figure the notebook shows a short text alternative, taken from the
figure itself: its suptitle and the titles of its panels (or, without titles, its axis labels).
The text goes into the figure output's metadata (``metadata["image/png"]["alt"]``), where the
site's Sphinx extension (``_ext/course_site.py``) finds it and sets the image's ``alt``; the
figure and everything the notebook prints stay exactly as they are.
"""

import matplotlib_inline.backend_inline as _inline


def _plain(text: str) -> str:
    """A title without TeX markup: ``$\\log|\\det W|$`` reads as ``log|det W|``."""
    for old, new in (("$", ""), ("\\mathbf", ""), ("\\operatorname", ""), ("\\mathrm", ""), ("\\", ""),
                     ("{", ""), ("}", ""), ("\n", " ")):
        text = text.replace(old, new)
    return " ".join(text.split())


def figure_alt(fig) -> str:
    """``"Figure: <suptitle>: <panel title>; <panel title>; ..."`` (at most 250 characters)."""
    parts = []
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        parts.append(_plain(suptitle.get_text()))
    titles = []
    for ax in fig.axes:
        if getattr(ax, "_colorbar", None) is not None:   # a colour bar's label is not a panel
            continue
        title = " ".join(t for t in (ax.get_title(loc) for loc in ("left", "center", "right")) if t.strip())
        if not title and (ax.get_xlabel() or ax.get_ylabel()):
            title = f"{ax.get_ylabel() or 'value'} against {ax.get_xlabel() or 'index'}"
        if title and _plain(title) not in titles:
            titles.append(_plain(title))
    if titles:
        parts.append("; ".join(titles))
    text = ": ".join(parts) or f"a figure with {len(fig.axes)} panel{'s' if len(fig.axes) != 1 else ''}"
    text = "Figure: " + text
    return text if len(text) <= 250 else text[:247] + "..."


def _with_alt(fetch):
    def fetch_figure_metadata(fig):
        metadata = dict(fetch(fig) or {})
        try:
            metadata["image/png"] = {**metadata.get("image/png", {}), "alt": figure_alt(fig)}
        except Exception:  # an alt text is never worth a failed cell
            pass
        return metadata or None
    return fetch_figure_metadata


if not getattr(_inline._fetch_figure_metadata, "course_alt", False):
    _inline._fetch_figure_metadata = _with_alt(_inline._fetch_figure_metadata)
    _inline._fetch_figure_metadata.course_alt = True
