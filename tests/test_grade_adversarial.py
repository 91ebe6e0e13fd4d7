"""The grader against a dishonest class (issue 21): every attack is stopped, or flagged, or both.

One run of ``python -m course_utils.grade`` (sandboxed, two jobs) over a class of notebook 01
(trimmed to its imports and exercise cells, as the course copy too, to keep it fast): two honest
students, a victim whose submission a classmate tries to rewrite, and one student per attack of
the issue, each attack written into the first exercise's answer cell of an unsolved copy (the
only cells of a submission that run). Each is graded as the truth (the unsolved exercises "not
attempted", or "error" where the attack breaks the student's own run), flagged where the answer
hides names or reaches past the exercise, and nothing it does reaches the grader, a classmate or
the outputs, during the run or after it.
"""

import csv
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_utils import grade, sandbox

ROOT = Path(__file__).resolve().parents[1]
NB01 = "01_jacobian_and_determinant"
CHECKS = ("jacobian_by_hand", "leibniz_det", "triangular_log_abs_det")

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None, reason=f"no sandbox: {sandbox.unavailable()}")


def _trimmed(nb):
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [c for i, c in enumerate(nb.cells) if c.cell_type != "code" or i == first or "checks." in c.source]
    return nb


def _read(folder):
    return _trimmed(nbformat.read(ROOT / folder / f"{NB01}.ipynb", as_version=4))


def _with_attack(code):
    nb = _read("lectures")
    if code.startswith("def leibniz_det"):  # an answer to exercise 2, just before its check
        cell = next(c for c in nb.cells if c.cell_type == "code" and "checks.leibniz_det(" in c.source)
        cell.source = cell.source.replace("leibniz_det = checks.leibniz_det(", code + "\n\nleibniz_det = checks.leibniz_det(")
        return nb
    cell = next(c for c in nb.cells if c.cell_type == "code" and "checks.jacobian_by_hand(" in c.source)
    cell.source = code + "\n\n" + cell.source
    return nb


def _attacks(sub, out, grader_pid):
    victim = sub / "victim" / f"{NB01}.ipynb"
    return {
        "forged_log": "import os, json\npath = os.environ.get('COURSE_CHECKS_LOG', 'checks.jsonl')\n"
                      "for n, c in [(1, 'jacobian_by_hand'), (2, 'leibniz_det'), (3, 'triangular_log_abs_det')]:\n"
                      "    open(path, 'a').write(json.dumps({'exercise': n, 'check': c, 'status': 'correct',"
                      " 'message': 'forged'}) + '\\n')",
        "record": "from course_utils import checks as _c\nfor f in (checks.jacobian_by_hand, checks.leibniz_det,"
                  " checks.triangular_log_abs_det):\n    _c._record(f, 'correct', 'forged')",
        "string_call": "note = '''\nchecks.jacobian_by_hand(jacobian_by_hand)\n'''",
        "patched": "import course_utils.checks as _c\n_c.assert_close = lambda *a, **k: None\n"
                   "checks.assert_close = lambda *a, **k: None",
        "reference": "def leibniz_det(M):\n    return linalg.leibniz_det(M)",
        "solutions": "import course_utils, pathlib\nroot = pathlib.Path(course_utils.__file__).parents[1]\n"
                     "exec(open(root / 'solutions' / 'x.py').read())",
        "proc": "import os\nfound = []\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n"
                "        try:\n            found.append(open(f'/proc/{pid}/cmdline').read())\n"
                "        except OSError:\n            pass\n"
                f"print('PROCS', len(found), any({str(sub)!r} in c or {str(out)!r} in c for c in found), "
                f"os.path.exists({str(sub)!r}))",
        "rewrite": f"open({str(victim)!r}, 'w').write('{{}}')",
        "truncate": f"import glob\nfor p in glob.glob({str(out)!r} + '/**/*.ipynb', recursive=True):\n"
                    "    open(p, 'w').close()",
        "detached": "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 3; echo FORGED-LATER > "
                    f"{out}/grades.csv; echo FORGED-LATER > {out}/summary.md'], start_new_session=True)",
        "signal": f"import os, signal\ntry:\n    os.kill({grader_pid}, signal.SIGTERM)\nexcept OSError as e:\n"
                  "    print('KILL', type(e).__name__)\nos.kill(1, signal.SIGTERM) if False else None",
        "big_print": "print('x' * 50_000_000)",
        "c_socket": "import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\ntry:\n"
                    "    s.connect(('1.1.1.1', 80))\nexcept OSError as e:\n    print('NET', e.errno)",
        "memory_hog": "try:\n    hog = bytearray(6 * 2 ** 30)\nexcept MemoryError:\n    print('HOG refused')",
        "flood": "import subprocess\nkids = []\ntry:\n    for _ in range(1000):\n"
                 "        kids.append(subprocess.Popen(['sleep', '600']))\nexcept OSError as e:\n"
                 "    print('FLOOD stopped at', len(kids), type(e).__name__)",
        "sigint": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    }


def _sandbox_processes():
    """Processes of the sandboxes' user ids still alive."""
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                uid = os.stat(f"/proc/{pid}").st_uid
            except OSError:
                continue
            if sandbox.FIRST_UID <= uid < sandbox.FIRST_UID + 16:
                left.append(pid)
    return left


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adversarial")
    course, sub, out = tmp / "course", tmp / "class", tmp / "out"
    course.mkdir()
    nbformat.write(_read("solutions"), course / f"{NB01}.ipynb")
    for honest in ("good", "victim"):
        (sub / honest).mkdir(parents=True)
        nbformat.write(_read("solutions"), sub / honest / f"{NB01}.ipynb")
    # the grader runs in this subprocess; its pid is what the "signal" student aims at
    cmd = [sys.executable, "-m", "course_utils.grade", str(sub), "--out", str(out), "--course", str(course),
           "--jobs", "2", "--timeout", "240", "--cell-timeout", "20", "--processes", "128"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp)
    for name, code in _attacks(sub, out, proc.pid).items():
        (sub / name).mkdir(parents=True)
        nbformat.write(_with_attack(code), sub / name / f"{NB01}.ipynb")
    victim_hash = hashlib.sha256((sub / "victim" / f"{NB01}.ipynb").read_bytes()).hexdigest()
    # the class is written before the grader looks (it lists the folder after importing torch)
    stdout, stderr = proc.communicate(timeout=1200)
    assert proc.returncode == 0, stderr[-3000:]
    after = {p: p.read_bytes() for p in (out / "grades.csv", out / "summary.md")}
    time.sleep(5)  # the detached process would have written by now
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return dict(rows=rows, out=out, sub=sub, stdout=stdout, after=after, victim_hash=victim_hash,
                table={(r["student"], int(r["exercise"])): r for r in rows})


def test_honest_students_and_the_victim_are_graded_exactly_right(attacked):
    for student in ("good", "victim"):
        got = {n: attacked["table"][student, n]["status"] for n in (1, 2, 3)}
        assert got == {1: "correct", 2: "correct", 3: "correct"}, (student, attacked["table"][student, 1])
        assert all(attacked["table"][student, n]["verdict_by"] == "grader" for n in (1, 2, 3))
        assert not any(attacked["table"][student, n]["flag"] for n in (1, 2, 3))


def test_no_attacker_gets_a_mark_it_did_not_earn(attacked):
    for (student, number), row in attacked["table"].items():
        if student in ("good", "victim"):
            continue
        assert row["status"] != "correct", row
        assert row["verdict_by"] in ("grader", ""), row


def test_forgeries_are_graded_as_the_truth(attacked):
    for student in ("forged_log", "record", "string_call", "patched", "solutions", "reference", "proc", "rewrite",
                    "truncate", "detached", "signal", "big_print", "c_socket", "memory_hog", "flood"):
        got = {n: attacked["table"][student, n]["status"] for n in (1, 2, 3)}
        if student == "reference":  # the library's own function, switched off inside the kernel too
            assert got == {1: "not attempted", 2: "wrong", 3: "not attempted"}, got
            assert "linalg.leibniz_det" in attacked["table"][student, 2]["message"]
            continue
        assert got[2] == got[3] == "not attempted", (student, got)
        assert got[1] in ("not attempted", "error"), (student, attacked["table"][student, 1])


def test_answers_that_hide_names_or_reach_outside_are_flagged(attacked):
    expected = {"forged_log": "open", "record": "_record", "patched": "patches a module",
                "solutions": "__file__", "proc": "os",
                "rewrite": "open", "truncate": "open", "detached": "subprocess", "signal": "os", "c_socket": "_socket"}
    for student, words in expected.items():
        flag = attacked["table"][student, 1]["flag"]
        assert flag.startswith("line ") and words in flag, (student, flag)
    flag = attacked["table"]["reference", 2]["flag"]
    assert "calls course_utils.linalg.leibniz_det" in flag, flag  # the reference, also switched off


def test_nothing_outside_the_sandbox_is_reached(attacked):
    out, sub = attacked["out"], attacked["sub"]
    assert hashlib.sha256((sub / "victim" / f"{NB01}.ipynb").read_bytes()).hexdigest() == attacked["victim_hash"]
    for student in ("solutions", "rewrite"):
        assert attacked["table"][student, 1]["status"] == "error", attacked["table"][student, 1]
        assert "FileNotFoundError" in attacked["table"][student, 1]["message"] \
            or "No such file" in attacked["table"][student, 1]["message"]

    def printed(student):
        nb = nbformat.read(out / "executed" / student / f"{NB01}.ipynb", as_version=4)
        return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)

    assert "PROCS" in printed("proc") and "True" not in printed("proc").split("PROCS")[1].splitlines()[0]
    assert "KILL ProcessLookupError" in printed("signal")
    assert "NET 101" in printed("c_socket")
    assert "HOG refused" in printed("memory_hog")
    assert "FLOOD stopped at" in printed("flood")
    for path in (out / "executed").rglob("*.ipynb"):
        assert nbformat.read(path, as_version=4).cells, path


def test_limits_hold(attacked):
    out = attacked["out"]
    big = out / "executed" / "big_print" / f"{NB01}.ipynb"
    assert big.stat().st_size < 3_000_000
    assert "the rest was dropped" in big.read_text()
    row = attacked["table"]["sigint", 1]
    assert row["status"] == "error" and "timeout" in row["message"], row
    assert attacked["table"]["sigint", 2]["status"] == "error"


def test_outputs_do_not_change_after_the_grader_exits_and_nothing_is_left_running(attacked):
    for path, content in attacked["after"].items():
        assert path.read_bytes() == content, path
    assert b"FORGED-LATER" not in attacked["after"][attacked["out"] / "grades.csv"]
    assert not _sandbox_processes()
    summary = (attacked["out"] / "summary.md").read_text()
    assert summary.startswith("Graded in a bubblewrap sandbox")
    assert "Flagged" in summary


def test_without_bubblewrap_grading_stops_with_one_line(tmp_path, monkeypatch):
    (tmp_path / "class").mkdir()
    nbformat.write(_read("lectures"), tmp_path / "class" / f"{NB01}.ipynb")
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on the PATH
    run = subprocess.run([sys.executable, "-m", "course_utils.grade", str(tmp_path / "class")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert "bubblewrap" in line and "apt-get install bubblewrap" in line
