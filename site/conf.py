"""Sphinx configuration of the course's website (``make site``; sources written by ``site/build.py``).

Nothing on a page comes from another host: the theme's CSS, JavaScript and icon fonts are in its
own package, mathematics is set by a MathJax 3 copied from the ``sphinx-mathjax-offline`` package
into ``_static/mathjax``, and myst-nb's default ipywidgets scripts (from a CDN) are switched off.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

SITE = os.environ.get("COURSE_SITE", "lectures")

project = "Flow models and implicit networks"
author = "the course's authors"
copyright = "the course's authors"
html_title = project + (" (instructors' version)" if SITE == "solutions" else "")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "course_site",
]

# ---- notebooks (myst-nb) ---------------------------------------------------------------------
nb_execution_mode = "cache"            # site/build.py fills the cache first; myst-nb only reads it
nb_execution_cache_path = os.environ.get("COURSE_SITE_CACHE", str(HERE.parent / "build/site/jupyter-cache"))
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_in_temp = True
nb_ipywidgets_js = {}                  # the defaults load require.js and the widget manager from CDNs
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True
exclude_patterns = ["download/**", "**/.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type"]

# ---- API reference (autodoc + napoleon for the docstrings' "Args:" / "Example:" shape) -----------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Offline there is no intersphinx: names of other packages (torch.Tensor, numpy.ndarray, ...) in
# signatures cannot be linked and are not nitpicked; every reference into the course must resolve.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|matplotlib|plt|sklearn|scipy|ipywidgets|collections|typing|nn)(\..*)?"),
    (r"py:class", r"(Tensor|Module|Path|Axes|Figure|Generator|Callable|Iterable|Iterator|Sequence|Any|"
                  r"optional|callable|array|Timing|History|Optional|Union|contextlib\..*|pathlib\..*)"),
    # private base classes (show-inheritance names them; they are not documented) and the names in
    # torch's own docstring of Module.train, which a layer that overrides train() inherits
    (r"py:class", r"(.*\._\w+|Dropout|BatchNorm)"),
]

# ---- HTML -------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "navigation_with_keys": False,
}
# The theme's light/dark switch starts in "auto" (without it, the theme logs a console error).
html_context = {"default_mode": "auto"}
html_last_updated_fmt = None
html_copy_source = True
html_show_sphinx = False
# The search page would fetch each result's page for a summary; a browser refuses such fetches
# from a folder opened as files (file://, CORS), so the results are listed without summaries.
html_show_search_summary = False
