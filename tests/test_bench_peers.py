"""``make bench-peers`` cannot rot: its harness trains a peer and the course's model for a few steps.

Not timed. Skipped, with one line, where the peers (``requirements-peers.txt``) are not installed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("zuko", reason="peers not installed (make bench-peers installs requirements-peers.txt)")
pytest.importorskip("normflows", reason="peers not installed (make bench-peers installs requirements-peers.txt)")

sys.path.insert(0, str(Path(__file__).parent))
import bench_peers  # noqa: E402


def test_digits_table_runs_the_course_glow_and_a_peer_at_equal_steps_and_equal_time():
    entries = [e for e in bench_peers.digit_entries() if e.course or e.name.startswith("zuko NSF")]
    results = bench_peers.run_table(entries, bench_peers.digits_task(), steps=3, seeds=1, log=lambda line: None)
    assert [r.entry.course for r in results] == [True, False]
    for r in results:
        assert r.params > 0 and r.steps_equal == 3 and r.steps_time >= 1 and r.ms_per_step > 0
        assert all(math.isfinite(s) for s in r.score_equal + r.score_time)
    assert results[0].steps_time == 3                    # the course model sets the time budget
    table = bench_peers.digits_table(results, 3, 1, bench_peers.categorical_bits_per_dim())
    assert table.count("\n| ") == 3 and "zuko NSF" in table and "categorical" in table


def test_2d_table_runs_each_library_and_writes_between_the_markers(tmp_path):
    task = bench_peers.density_task("moons", batch=64, n_test=500)
    results = bench_peers.run_table(bench_peers.entries_2d(), task, steps=2, seeds=1, log=lambda line: None)
    assert {r.entry.name.split()[0] for r in results} == {"course", "zuko", "normflows"}
    assert all(math.isfinite(s) for r in results for s in r.score_equal)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:peers-2d:start -->\nold\n<!-- bench:peers-2d:end -->\nrest\n")
    readme.write_text(bench_peers.replace_block(readme.read_text(), "peers-2d", bench_peers.table_2d({"moons": results})))
    text = readme.read_text()
    assert "old" not in text and "| moons | zuko RealNVP" in text and text.endswith("rest\n")
