"""The tests every exercise check must pass, shared by the tests/test_checks*.py files.

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
