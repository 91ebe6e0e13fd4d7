"""A bubblewrap sandbox for running one student's notebook kernel (used by ``course_utils.grade``).

    argv = Sandbox(run_dir, work, limits).wrap([python, "-m", "ipykernel_launcher", ...])

What a command run through :meth:`Sandbox.wrap` sees and may do:

- a file system of read-only binds: the system (``/usr``, ``/etc``, the Python installation, the
  course environment and ``course_utils``, any extra library folder), plus the run's own
  folder, read-only, with two writable folders in it: ``work`` (the notebook's working copy,
  also ``$HOME`` and ``$TMPDIR``) and ``ipc`` (the kernel's sockets). Nothing else of the host is
  there: not ``solutions/``, not the other submissions, not the grader's output, not ``/root``
  or ``/home``;
- its own PID namespace (it sees only its own processes; every process it starts is killed
  when the sandbox ends, detached or not) and its own network namespace (only loopback: offline
  by the kernel, whatever library or child process tries), IPC, UTS and cgroup namespaces, a new
  session (no terminal to inject keys into);
- an unprivileged user: when the grader runs as root, a host user id of its own (``64000 + slot``,
  no capabilities, no supplementary groups); otherwise the grader's own user mapped to ``nobody``
  in a user namespace;
- a cleared environment (``PATH``, ``HOME``, ``TMPDIR``, ``LANG`` and what the caller sets);
- resource limits (``prlimit``): address space (memory), processes, open files, file size and
  CPU time.

Where bubblewrap is missing or cannot create namespaces, :func:`unavailable` says why in one line.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["Limits", "Sandbox", "unavailable", "INSTALL_HINT"]

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install "
                "bubblewrap), or grade with --no-sandbox in a throw-away container")
#: host user ids of the sandboxes when the grader runs as root: one per concurrent run
FIRST_UID = 64000


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits for one sandbox (``None``: no limit).

    Example:
        >>> Limits(memory_mb=512).prlimit()[:2]
        ['prlimit', '--as=536870912']
    """
    memory_mb: int | None = 4096          #: address space, MiB
    processes: int | None = 256           #: processes and threads of the sandbox's user
    open_files: int | None = 1024
    file_size_mb: int | None = 512        #: the largest file it may write, MiB
    cpu_seconds: int | None = None        #: CPU time of any one process

    def prlimit(self) -> list[str]:
        args = ["prlimit"]
        if self.memory_mb is not None:
            args.append(f"--as={self.memory_mb * 2 ** 20}")
        if self.processes is not None:
            args.append(f"--nproc={self.processes}")
        if self.open_files is not None:
            args.append(f"--nofile={self.open_files}")
        if self.file_size_mb is not None:
            args.append(f"--fsize={self.file_size_mb * 2 ** 20}")
        if self.cpu_seconds is not None:
            args.append(f"--cpu={self.cpu_seconds}")
        return args + ["--"]


def _system_binds() -> list[str]:
    args = []
    for path in ("/usr", "/etc", "/opt"):
        if os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _python_paths() -> list[Path]:
    """The interpreter's installation and the environment (venv) it runs in."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent}
    return sorted(p for p in paths if not any(p.is_relative_to(s) for s in (Path("/usr"), Path("/etc"))))


class Sandbox:
    """The bubblewrap command line for one run (see the module docstring).

    Args:
        run_dir: the run's own folder (bound read-only; holds ``work`` and ``ipc``, bound writable).
        library: folders to bind read-only at their own paths (``course_utils``, extra imports).
        limits: the resource limits.
        slot: which concurrent run this is (its host user id when the grader is root).
        env: extra environment variables.

    Example:
        >>> box = Sandbox(Path("/tmp/run"), [], Limits(memory_mb=1024), slot=1)
        >>> argv = box.wrap(["python3", "-c", "print(1)"])
        >>> argv[argv.index("--chdir") + 1], argv[-3:]
        ('/tmp/run/work', ['python3', '-c', 'print(1)'])
        >>> "--unshare-net" in argv and "--unshare-pid" in argv
        True
    """

    def __init__(self, run_dir: Path, library: list[Path], limits: Limits, slot: int = 0,
                 env: dict[str, str] | None = None):
        self.run_dir, self.library, self.limits, self.slot = Path(run_dir), list(library), limits, slot
        self.work, self.ipc = self.run_dir / "work", self.run_dir / "ipc"
        self.env = dict(env or {})
        self.root = os.geteuid() == 0
        self.uid = FIRST_UID + slot if self.root else None

    def prepare(self) -> None:
        """Create ``work`` and ``ipc``, writable by the sandbox's user only."""
        for folder in (self.work, self.ipc):
            folder.mkdir(parents=True, exist_ok=True)
            if self.root:
                os.chown(folder, self.uid, self.uid)
                for sub in folder.rglob("*"):
                    os.chown(sub, self.uid, self.uid, follow_symlinks=False)
            folder.chmod(0o700)
        self.run_dir.chmod(0o755)

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` run inside the sandbox (argv for ``subprocess``)."""
        bwrap = shutil.which("bwrap") or "bwrap"
        args = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading"]
        if not self.root:
            args += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        args += _system_binds() + ["--proc", "/proc", "--dev", "/dev"]
        binds = [(p, False) for p in _python_paths() + self.library] + [(self.run_dir, False)]
        made: set[Path] = set()
        for path, _ in binds:  # parents readable by anyone (bwrap would make them 0700)
            for parent in reversed(Path(path).parents):
                if parent != Path("/") and parent not in made and not parent.is_relative_to("/usr"):
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", str(parent)]
        for path, _ in binds:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(self.work), str(self.work), "--bind", str(self.ipc), str(self.ipc),
                 "--chdir", str(self.work), "--clearenv"]
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.work),
               "TMPDIR": str(self.work), "LANG": "C.UTF-8", **self.env}
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--"] + self.limits.prlimit()
        if self.root:
            args += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return args + list(command)


def unavailable() -> str | None:
    """Why the sandbox cannot run here (one line), or ``None`` when it can.

    Example:
        >>> unavailable() is None or "bubblewrap" in unavailable()
        True
    """
    if shutil.which("bwrap") is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    for tool in ("prlimit", "setpriv") if os.geteuid() == 0 else ("prlimit",):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is not installed, the sandbox needs it"
    import tempfile
    with tempfile.TemporaryDirectory(prefix="course-sandbox-") as tmp:
        box = Sandbox(Path(tmp), [], Limits())
        box.prepare()
        try:
            run = subprocess.run(box.wrap(["true"]), capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"bubblewrap cannot run here ({err}): {INSTALL_HINT}"
    if run.returncode != 0:
        why = " ".join(run.stderr.split())[:200] or f"exit status {run.returncode}"
        return (f"bubblewrap cannot create its namespaces here ({why}); allow unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1) or run the grader as root in a container, "
                "or grade with --no-sandbox in a throw-away container")
    return None
