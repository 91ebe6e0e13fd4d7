"""JupyterLab started the way students start it (``make lab``), for the browser and lab tests.

:class:`Lab` runs ``make lab`` with a port, no browser, loopback only and no token, serving a
folder of the caller's choice (``LAB_ROOT``), with fresh Jupyter runtime, config, data, settings
and workspace folders, so nothing of the user's own Jupyter set-up (or of an earlier run) takes
part. It stops the server by the process id the server writes into its runtime folder; the
server shuts its kernels down on the way out.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The Chromium the browser tests drive (Debian's package ``chromium``); ``COURSE_CHROMIUM``
#: points elsewhere.
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")

#: Headless, no sandbox (CI runs as root), and none of Chromium's own connections to the
#: internet (updates, sync, field trials): offline they would only fail, many at a time.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]

# JupyterLab's settings for a fresh user: no question about fetching Jupyter news (its toast
# would cover the notebook), no update check.
FRESH_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}

# Variables of the caller's environment that must not reach the server and its kernels.
_DROP = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MPLBACKEND", "PYTEST_CURRENT_TEST", "JUPYTER_TOKEN")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class Lab:
    """``make lab`` serving ``lab_root`` on 127.0.0.1 (a context manager).

    ``workdir`` receives the fresh Jupyter folders and the server's log (``lab.log``).
    """

    def __init__(self, lab_root: Path, workdir: Path, port: int | None = None, start_timeout: float = 120.0):
        self.lab_root = Path(lab_root).resolve()
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.server_pid: int | None = None
        self._make: subprocess.Popen | None = None
        self._log = None

    # -- start and stop --------------------------------------------------------------------
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in _DROP}
        dirs = {"JUPYTER_RUNTIME_DIR": "runtime", "JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
                "JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
                "IPYTHONDIR": "ipython"}
        for var, name in dirs.items():
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.workdir / name)
        for name, values in FRESH_SETTINGS.items():
            path = self.workdir / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return env

    def command(self) -> list[str]:
        lab_args = (f"--port={self.port} --ServerApp.port_retries=0 --ServerApp.ip=127.0.0.1 "
                    "--no-browser --IdentityProvider.token=")
        return ["make", "-s", "--no-print-directory", "-C", str(ROOT), "lab",
                f"LAB_ROOT={self.lab_root}", f"LAB_ARGS={lab_args}"]

    def start(self) -> "Lab":
        env = self.env()
        self._log = open(self.workdir / "lab.log", "wb")
        self._make = subprocess.Popen(self.command(), env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        runtime = Path(env["JUPYTER_RUNTIME_DIR"])
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._make.poll() is not None:
                raise RuntimeError(f"`make lab` exited with {self._make.returncode}:\n{self.log_tail()}")
            if self.server_pid is None:
                for info in runtime.glob("jpserver-*.json"):
                    try:
                        self.server_pid = int(json.loads(info.read_text())["pid"])
                    except (ValueError, KeyError):  # being written
                        pass
            if self.server_pid is not None:
                try:
                    if http_get(self.url + "/api/status", timeout=2)[0] == 200:
                        return self
                except OSError:
                    pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {self.start_timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the server's pid (it shuts its kernels down), then wait for ``make`` to end."""
        if self._make is None:
            return
        if self.server_pid is not None:
            try:
                os.kill(self.server_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self._make.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in (self.server_pid, self._make.pid):
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self._make.wait(timeout=10)
        self._make = None
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------
    def log_tail(self, n: int = 40) -> str:
        path = self.workdir / "lab.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(lines[-n:])

    def api(self, path: str):
        status, body = http_get(self.url + "/api/" + path.lstrip("/"))
        return json.loads(body)

    def shut_down_sessions(self) -> None:
        """End every kernel session (as closing a notebook and shutting its kernel down does)."""
        for session in self.api("sessions"):
            self.delete(f"/api/sessions/{session['id']}")

    def delete(self, path: str) -> int:
        """DELETE with the server's XSRF cookie (token-less servers still check it on writes)."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(self.url + "/lab", timeout=10).read()
        xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        request = urllib.request.Request(self.url + path, method="DELETE", headers={"X-XSRFToken": xsrf})
        with opener.open(request, timeout=10) as response:
            return response.status


def copy_course(dest: Path, folders=("lectures",)) -> Path:
    """Copies of the course's notebook folders under ``dest`` (JupyterLab autosaves outputs into
    what it serves, so it never serves the repository's own notebooks when it runs them)."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest
