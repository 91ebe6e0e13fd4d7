"""The README's first command works: `make lab` serves the course's start notebook.

Started with a port, no browser and no token (``LAB_ARGS``), on the repository itself, as a
student starts it; the notebook is only read through the server's contents API, nothing runs.
"""

import json
import os

from browser_lab import ROOT, Lab, http_get


def test_make_lab_serves_the_start_notebook(tmp_path):
    with Lab(ROOT, tmp_path) as lab:
        status, body = http_get(f"{lab.url}/api/contents/lectures/00_start_here.ipynb")
        assert status == 200
        model = json.loads(body)
        assert model["type"] == "notebook"
        assert model["content"]["cells"][0]["source"].startswith("# ")
        status, page = http_get(f"{lab.url}/lab/tree/lectures/00_start_here.ipynb")
        assert status == 200 and b"JupyterLab" in page
        pid = lab.server_pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"the JupyterLab server (pid {pid}) still runs after stop()")
