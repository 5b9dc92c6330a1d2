"""Parameter declaration through public rclpy calls only: a YAML integer for a float parameter becomes that
float, a single string for a list becomes a one-element list, wrong types and ranges are refused with one
sentence, and a float parameter keeps refusing strings at run time."""

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run `make setup` and `source scripts/env.sh`")

from rclpy.parameter import Parameter  # noqa: E402

from sim2sg_ros.params import ADAPTATION_PARAMS, SIM_CAMERA_PARAMS, declare, spec_map, validate  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture()
def ros():
    rclpy.init()
    nodes = []

    def make(**overrides):
        ps = [Parameter(k, value=v) for k, v in overrides.items()]
        n = rclpy.create_node(f"params_test_{len(nodes)}", parameter_overrides=ps)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.destroy_node()
    rclpy.shutdown()


def test_integer_for_a_float_and_a_string_for_a_list_mean_what_they_say(ros):
    node = ros(rate=15)
    values = declare(node, SIM_CAMERA_PARAMS)
    assert values["rate"] == 15.0 and isinstance(values["rate"], float)
    assert node.get_parameter("rate").type_ == Parameter.Type.DOUBLE
    assert not node.set_parameters([Parameter("rate", value=5.0)])[0].successful  # still read-only
    node = ros(bags="one.bag")
    assert declare(node, ADAPTATION_PARAMS)["bags"] == ["one.bag"]
    assert node.get_parameter("bags").type_ == Parameter.Type.STRING_ARRAY
    node = ros()
    assert declare(node, ADAPTATION_PARAMS)["bags"] == []


def test_wrong_types_and_ranges_are_refused(ros):
    with pytest.raises(ValueError, match="'rate' must be a float"):
        declare(ros(rate="fast"), SIM_CAMERA_PARAMS)
    with pytest.raises(ValueError, match=r"'rate'.*(must be in|out of range)"):
        declare(ros(rate=10_000), SIM_CAMERA_PARAMS)
    spec = spec_map(SIM_CAMERA_PARAMS)["rate"]
    assert validate(spec, "x") and validate(spec, True) and validate(spec, 3) is None
