"""The contract every flow layer keeps, checked the same way for every layer.

Cases come from ``tests/cases_vector.py`` (vector layers) and ``tests/cases_image.py``
(image layers); each is a ``FlowCase`` (see ``tests/flowcheck.py``).
"""

import pytest
import torch

from flowcheck import check_layer

import cases_image
import cases_vector
import course_utils.flows as flows

CASES = cases_vector.CASES + cases_image.CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_flow_contract(case):
    check_layer(case)


def test_every_flow_layer_of_the_library_has_a_case():
    layer_classes = {obj for name in flows.__all__ if isinstance(obj := getattr(flows, name), type)
                     and issubclass(obj, flows.FlowLayer) and obj is not flows.FlowLayer}
    covered = {type(m) for case in CASES for m in case.make().modules()}
    missing = sorted(cls.__name__ for cls in layer_classes - covered)
    assert not missing, f"flow layers without a contract case: {missing}"


def test_triangular_claims_are_checked():
    claimed = {c.name for c in CASES if c.triangular is not None}
    assert {"affine", "affine_flip", "additive_odd_flip"} <= claimed
    assert any(name.startswith("EmergingConv") for name in claimed)
    assert any(name.startswith("AffineCouplingImage") for name in claimed)


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
