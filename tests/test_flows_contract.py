"""The contract every flow layer keeps, checked the same way for every layer.

Cases come from ``tests/cases_vector.py`` (vector layers) and ``tests/cases_image.py``
(image layers); each is a ``FlowCase`` (see ``tests/flowcheck.py``).
"""

import pytest
import torch

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


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_error(case):
    """Wrong rank or wrong feature/channel count: a ValueError naming expected and given shapes."""
    layer = case.make()
    x = torch.randn(case.shape)
    wrong = {"no batch dimension": x[0]}
    if not case.extra.get("any_channels"):
        wrong["one feature too many"] = torch.randn(case.shape[0], case.shape[1] + 1, *case.shape[2:])
    for what, bad in wrong.items():
        for method in (layer.forward, layer.inverse):
            layer.eval()
            with pytest.raises(ValueError) as info:
                method(bad)
            message = str(info.value)
            assert "expected" in message and str(tuple(bad.shape)) in message, f"{what}: {message}"
