"""The contract every flow layer keeps, checked the same way for every layer.

Cases come from ``tests/cases_vector.py`` (vector layers) and ``tests/cases_image.py``
(image layers); each is a ``FlowCase`` (see ``tests/flowcheck.py``).
"""

import pytest

from flowcheck import check_layer

CASES = []
for module in ("cases_vector", "cases_image"):
    try:
        CASES += __import__(module).CASES
    except ModuleNotFoundError as err:  # a module of cases not written yet
        if err.name != module:
            raise


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_flow_contract(case):
    report = check_layer(case)
    if report["has_state"]:
        assert report["moved"], f"{case.name}: training steps moved no parameter, so the test proves little"


def test_there_are_cases():
    assert len(CASES) >= 10
