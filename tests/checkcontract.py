"""The tests every exercise check must pass, shared by the tests/test_checks*.py and
tests/test_corpus_nbNN.py files.

The slip corpus (usage note). One file per notebook, ``tests/test_corpus_nbNN.py``::

    from checkcontract import Slip, corpus_tests

    CORPUS = {
        "nb01.leibniz_det": dict(          # "module.check" under course_utils.checks
            right={"float64 loop": det_loop, "float32": det_float32, "vectorised": det_vec},   # >= 3 styles
            wrong=[Slip("permanent", permanent, "permanent"),     # the slip, the answer, words
                   Slip("absolute value", lambda M: ..., "absolute value"),  # its message must contain
                   Slip("in place", in_place, "in place"),
                   Slip("a rare one", odd, None),                 # None: fails, but unnamed
                   ...]),                                          # >= 6 wrong answers
    }
    (test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
     test_corpus_is_big_enough) = corpus_tests(CORPUS)

A corpus written as ``RIGHT = {check: {style: answer}}`` and ``WRONG = {check: {slip: (answer,
words)}}`` (``tests/corpus_nbNN.py``) is turned into this form by ``corpus_from("nb06", RIGHT,
WRONG)``.

Each wrong answer must fail with a ``CheckFailed`` (no raw exception, no "your code raised"),
with a short message (no float noise like 0.30000001192092896) that contains its words (text,
not a pattern; a tuple means all of them); at least 90% of each notebook's wrong answers must
be named. Each right answer must pass. Measure a notebook's corpus against the checks of an
older commit (before/after table: right accepted, wrong rejected, named, raw errors)::

    .venv/bin/python tests/checkcontract.py tests/test_corpus_nb01.py [--before COMMIT]
    .venv/bin/python tests/checkcontract.py tests/corpus_nb06.py --before COMMIT   # RIGHT/WRONG files too

Older contract tests (below) stay for the tests/test_checks*.py files:

Each of those files defines ``CASES = {name: (check, reference_solution, {slip: wrong_answer})}``
and takes the shared tests with

    (test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
     test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)

and says which words each diagnosed slip's message must contain with

    test_slips_are_named = slips_named(CASES, {(name, slip): "words in the message", ...})
"""

import pytest

from course_utils.checks import CheckFailed

# A wrong answer's message must say what was expected, in one of these ways (a file may add
# words for its own kinds of diagnosis, e.g. "create_graph").
EXPLAINING_WORDS = ("expected", "should", "NaN", "overflow")


def not_attempted(*args, **kwargs):
    raise NotImplementedError("Exercise: not done")


def contract_tests(cases: dict, extra_words: tuple[str, ...] = ()):
    """The four contract tests, parametrised over ``cases``."""
    words = EXPLAINING_WORDS + tuple(extra_words)
    wrong = [(name, slip) for name, (_, _, wrongs) in cases.items() for slip in wrongs]

    @pytest.mark.parametrize("name", cases)
    def test_reference_passes(name, capsys):
        check, reference, _ = cases[name]
        returned = check(reference)
        # a check made with a reference hands the student's (right) function back for later cells
        assert returned is (reference if check.reference is not None else None)
        assert check.last_result is True
        assert "correct" in capsys.readouterr().out

    @pytest.mark.parametrize("name", cases)
    def test_not_attempted_is_friendly(name, capsys):
        check, _, _ = cases[name]
        assert check(not_attempted) is check.reference and check.last_result is False
        out = capsys.readouterr().out
        assert "not attempted yet" in out and f"Exercise {check.exercise_number}" in out

    @pytest.mark.parametrize("name,slip", wrong)
    def test_wrong_answers_fail_with_numbers(name, slip):
        check, _, wrongs = cases[name]
        with pytest.raises(CheckFailed) as info:
            check(wrongs[slip])
        message = str(info.value)
        assert f"Exercise {check.exercise_number}" in message and "not right yet" in message
        assert any(word in message for word in words), message
        assert check.last_result is None

    def test_each_check_rejects_at_least_two_wrong_answers():
        for name, (_, _, wrongs) in cases.items():
            assert len(wrongs) >= 2, name

    return (test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
            test_each_check_rejects_at_least_two_wrong_answers)


def slips_named(cases: dict, slips: dict[tuple[str, str], str]):
    """A test, parametrised over ``slips``, that each wrong answer's message names its slip.

    ``slips`` maps ``(case name, slip)`` of ``cases`` to words (plain text, not a pattern) that
    the check's message for that wrong answer must contain.
    """
    @pytest.mark.parametrize("name,slip", list(slips))
    def test_slips_are_named(name, slip):
        check, _, wrongs = cases[name]
        with pytest.raises(CheckFailed) as info:
            check(wrongs[slip])
        assert slips[name, slip] in str(info.value), str(info.value)

    return test_slips_are_named


# ------------------------------------------------------------------------------------------------
# The slip corpus

import dataclasses
import importlib
import re
import sys
from typing import Callable

#: a share of each notebook's wrong answers that must be named
NAMED_SHARE = 0.9
MIN_WRONG, MIN_RIGHT = 6, 3
#: a number printed with float noise, like -0.30000001192092896
FLOAT_NOISE = re.compile(r"\d\.\d{9,}")
LONGEST_MESSAGE = 900


@dataclasses.dataclass
class Slip:
    """A plausible wrong answer: ``label`` says what slip it embodies, ``fn`` is the answer, and
    ``words`` what its message must contain (a string, or a tuple of strings all required;
    ``None`` when the check need not name it)."""

    label: str
    fn: Callable
    words: str | tuple[str, ...] | None = None


def check_of(key: str, package: str = "course_utils.checks"):
    """The check named ``"nbNN.name"`` in ``package`` (``None`` if that package has no such check)."""
    module_name, name = key.split(".")
    module = importlib.import_module(f"{package}.{module_name}")
    return getattr(module, name, None)


def outcome(check, fn) -> tuple[str, str]:
    """Run ``check(fn)``: ``("pass", "")``, ``("fail", message)`` or ``("raw", what escaped)``.

    A message saying "your code raised" (an error no slip explains) counts as raw.
    """
    try:
        check(fn)
    except AssertionError as err:
        message = str(err)
        return ("raw", message) if "your code raised" in message else ("fail", message)
    except Exception as err:   # noqa: BLE001 - what escapes is what we measure
        return "raw", f"{type(err).__name__}: {err}"
    return ("pass", "") if getattr(check, "last_result", True) is not False else ("not attempted", "")


def _named(message: str, words) -> bool:
    """Whether ``message`` contains ``words`` (plain text, case-insensitive; a tuple: all of them)."""
    if not words:
        return False
    words = (words,) if isinstance(words, str) else words
    return all(w.lower() in message.lower() for w in words)


def corpus_from(notebook: str, right: dict, wrong: dict) -> dict:
    """A corpus from ``RIGHT = {check: {style: answer}}`` and ``WRONG = {check: {slip: (answer, words)}}``.

    The other way to write a corpus file (``tests/corpus_nbNN.py``); ``notebook`` is ``"nb06"``.
    """
    return {f"{notebook}.{name}": dict(right=dict(right.get(name, {})),
                                       wrong=[Slip(slip, answer, words) for slip, (answer, words) in
                                              wrong.get(name, {}).items()])
            for name in dict.fromkeys([*right, *wrong])}


def corpus_tests(corpus: dict):
    """The corpus tests for one notebook's ``corpus`` (see the module docstring)."""
    import pytest

    rights = [(key, label) for key, entry in corpus.items() for label in entry["right"]]
    wrongs = [(key, i) for key, entry in corpus.items() for i in range(len(entry["wrong"]))]

    @pytest.mark.parametrize("key,label", rights, ids=[f"{k}-{l}" for k, l in rights])
    def test_right_answers_pass(key, label, capsys):
        check = check_of(key)
        fn = corpus[key]["right"][label]
        status, message = outcome(check, fn)
        assert status == "pass", f"{key}: the right answer '{label}' was {status}: {message}"
        assert "correct" in capsys.readouterr().out

    @pytest.mark.parametrize("key,index", wrongs,
                             ids=[f"{k}-{corpus[k]['wrong'][i].label}" for k, i in wrongs])
    def test_wrong_answers_fail_and_are_named(key, index):
        check = check_of(key)
        slip = corpus[key]["wrong"][index]
        status, message = outcome(check, slip.fn)
        assert status == "fail", f"{key}: the wrong answer '{slip.label}' was {status}: {message}"
        assert f"Exercise {check.exercise_number}" in message and "not right yet" in message
        assert not FLOAT_NOISE.search(message), f"float noise in: {message}"
        assert len(message) <= LONGEST_MESSAGE, f"{len(message)} characters: {message}"
        if slip.words is not None:
            assert _named(message, slip.words), f"'{slip.label}' should be named ({slip.words!r}): {message}"

    def test_most_slips_are_named():
        slips = [slip for entry in corpus.values() for slip in entry["wrong"]]
        named = sum(slip.words is not None for slip in slips)
        assert named >= NAMED_SHARE * len(slips), f"{named} of {len(slips)} wrong answers named"

    def test_corpus_is_big_enough():
        for key, entry in corpus.items():
            assert len(entry["wrong"]) >= MIN_WRONG, f"{key}: {len(entry['wrong'])} wrong answers"
            assert len(entry["right"]) >= MIN_RIGHT, f"{key}: {len(entry['right'])} right answers"
            assert check_of(key) is not None, key

    return test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named, \
        test_corpus_is_big_enough


def tally(corpus: dict, package: str = "course_utils.checks") -> dict[str, dict[str, int]]:
    """Per check: right answers accepted, wrong rejected, wrong named, raw errors (of both kinds).

    ``package`` is where the checks come from: ``course_utils.checks``, or an older version
    loaded with :func:`load_checks_at`.
    """
    import contextlib
    import io

    rows = {}
    for key, entry in corpus.items():
        check = check_of(key, package)
        row = dict(right=len(entry["right"]), accepted=0, wrong=len(entry["wrong"]), rejected=0, named=0, raw=0)
        if check is None:
            rows[key] = row
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            for fn in entry["right"].values():
                status, _ = outcome(check, fn)
                row["accepted"] += status == "pass"
                row["raw"] += status == "raw"
            for slip in entry["wrong"]:
                status, message = outcome(check, slip.fn)
                row["rejected"] += status in ("fail", "raw")
                row["named"] += status == "fail" and _named(message, slip.words)
                row["raw"] += status == "raw"
        rows[key] = row
    return rows


def load_checks_at(commit: str, name: str = "course_utils._checks_before") -> str:
    """Load ``course_utils/checks`` as it was at ``commit`` as the package ``name``; return ``name``."""
    import importlib.util
    import subprocess
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp()) / name.rsplit(".", 1)[-1]
    folder.mkdir()
    files = subprocess.run(["git", "ls-tree", "--name-only", commit, "course_utils/checks/"],
                           capture_output=True, text=True, check=True).stdout.split()
    for path in files:
        if path.endswith(".py"):
            text = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True,
                                  check=True).stdout
            (folder / Path(path).name).write_text(text)
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return name


def _table(rows: dict, title: str) -> str:
    lines = [f"{title}", "| check | right accepted | wrong rejected | wrong named | raw errors |", "|---|--:|--:|--:|--:|"]
    total = dict(right=0, accepted=0, wrong=0, rejected=0, named=0, raw=0)
    for key, r in rows.items():
        lines.append(f"| {key} | {r['accepted']}/{r['right']} | {r['rejected']}/{r['wrong']} | "
                     f"{r['named']}/{r['wrong']} | {r['raw']} |")
        for k in total:
            total[k] += r[k]
    lines.append(f"| all | {total['accepted']}/{total['right']} | {total['rejected']}/{total['wrong']} | "
                 f"{total['named']}/{total['wrong']} | {total['raw']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    """``python tests/checkcontract.py tests/test_corpus_nbNN.py ... [--before COMMIT]``: the tables."""
    import argparse
    import importlib.util
    from pathlib import Path

    parser = argparse.ArgumentParser(description="tally slip corpora against the checks")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--before", help="also tally against course_utils/checks at this commit")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    before = load_checks_at(args.before) if args.before else None
    for path in args.files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        corpus = getattr(module, "CORPUS", None)
        if corpus is None:                     # a RIGHT/WRONG corpus file, tests/corpus_nbNN.py
            notebook = "nb" + re.search(r"nb(\d\d)", path.stem).group(1)
            corpus = corpus_from(notebook, module.RIGHT, module.WRONG)
        if before:
            print(_table(tally(corpus, before), f"\n{path.name}: before ({args.before})"))
        print(_table(tally(corpus), f"\n{path.name}: now"))


if __name__ == "__main__":
    main()
