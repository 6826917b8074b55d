import pytest

from a2w.host.params import build_params, load_param_file, specs
from tests.probe_components import TickerParams


def write(tmp_path, text, name="p.yaml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_yaml_node_wildcard_and_nesting(tmp_path):
    f = write(tmp_path, """
/**:
  ros__parameters:
    use_sim_time: true
    gain: 1.0
/left/ticker:
  ros__parameters:
    gain: 3.0
    limits: {lin: 0.5, ang: 1.0}
other:
  ros__parameters:
    gain: 9.0
""")
    p = load_param_file(f, "/left/ticker")
    assert p == {"use_sim_time": True, "gain": 3.0, "limits.lin": 0.5, "limits.ang": 1.0}
    assert load_param_file(f, "/other") == {"use_sim_time": True, "gain": 9.0}


@pytest.mark.parametrize("text, msg", [
    ("node:\n  params: {a: 1}\n", "ros__parameters"),
    ("- a\n- b\n", "top level"),
    ("node: {ros__parameters: [1, 2]}\n", "must be a map"),
    ("node: {ros__parameters: {a: [}\n", "invalid YAML"),
])
def test_malformed_files_name_the_file(tmp_path, text, msg):
    f = write(tmp_path, text)
    with pytest.raises(ValueError, match=msg) as exc:
        load_param_file(f, "/node")
    assert str(f) in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_param_file(tmp_path / "nope.yaml", "/n")


def test_specs_expose_descriptions_and_ranges():
    s = {x.name: x for x in specs(TickerParams)}
    assert s["period"].low == 1e-4 and s["period"].high == 10.0
    assert "timer period" in s["period"].description
    assert s["mode"].choices == ("a", "b")
    assert s["use_sim_time"].default is False


def test_bool_is_not_an_int_and_lists_are_typed():
    with pytest.raises(ValueError, match="expected an integer"):
        build_params(TickerParams, {"count": True}, "/n")
    with pytest.raises(ValueError, match="expected a bool"):
        build_params(TickerParams, {"use_sim_time": "yes"}, "/n")
    assert build_params(TickerParams, {"tags": ("a", "b")}, "/n").tags == ["a", "b"]


# -- non-finite values (issue 12 item 2) ------------------------------------------------------
NON_FINITE = {".nan": "nan", ".inf": "inf", "-.inf": "-inf"}  # YAML spelling -> Python repr


def _float_params():
    """(exec name, Params class, spec, is_list) for every float / float-list parameter of every
    registered node."""
    import types
    import typing

    from a2w import nodes

    out = []
    for exec_name in sorted(nodes.NODES):
        cls = nodes.load(exec_name).Params
        for s in specs(cls):
            t = s.type
            if typing.get_origin(t) in (typing.Union, types.UnionType):
                t = next(a for a in typing.get_args(t) if a is not type(None))
            if t is float:
                out.append((exec_name, cls, s, False))
            elif typing.get_origin(t) in (list, tuple) and typing.get_args(t)[:1] == (float,):
                out.append((exec_name, cls, s, True))
    return out


FLOAT_PARAMS = _float_params()


def test_every_registered_node_has_float_parameters_to_check():
    names = {(e, s.name) for e, _, s, _ in FLOAT_PARAMS}
    assert {("arm_node", "min_arm_distance"), ("arm_node", "capsule_radii"), ("arm_node", "stale_after"),
            ("arm_node", "max_lead"), ("sim_node", "fault_window"),
            ("camera_node", "fps")} <= names


@pytest.mark.parametrize("yaml_value", list(NON_FINITE))
@pytest.mark.parametrize("exec_name, cls, spec, is_list", FLOAT_PARAMS,
                         ids=[f"{e}.{s.name}" for e, _, s, _ in FLOAT_PARAMS])
def test_non_finite_float_parameters_are_refused_from_yaml(tmp_path, exec_name, cls, spec, is_list,
                                                           yaml_value):
    fqn = f"/rig/{exec_name}"
    if is_list:
        # Every position of the list: a finite default with one element replaced, or a short list.
        base = list(spec.default) or [0.5] * 6
        cases = [base[:i] + [yaml_value] + base[i + 1:] for i in range(len(base))]
    else:
        cases = [yaml_value]
    for value in cases:
        text = value if isinstance(value, str) else "[" + ", ".join(str(v) for v in value) + "]"
        f = write(tmp_path, f"/**:\n  ros__parameters:\n    {spec.name}: {text}\n")
        values = load_param_file(f, fqn)
        with pytest.raises(ValueError) as exc:
            build_params(cls, values, fqn)
        msg = str(exc.value)
        assert repr(fqn) in msg and repr(spec.name) in msg and "finite" in msg, msg
        assert NON_FINITE[yaml_value] in msg, msg


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused_on_every_path_into_a_node(value):
    """Launch <param> values and the rclpy host's overrides reach a node through ``build_params``
    (as Python floats); so do in-process ``Host.add`` specs."""
    from a2w.host import Host
    from a2w.host.host import NodeSpec
    from a2w.launch.runner import parse_value
    from tests.probe_components import Ticker

    spelled = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
    parsed = parse_value(spelled)
    assert isinstance(parsed, float) and repr(parsed) == repr(value)
    host = Host(diagnostics_period=0)
    with pytest.raises(ValueError, match=r"node '/t', parameter 'gain'.*finite"):
        host.add(NodeSpec(Ticker, "t", params={"gain": parsed}))
    assert not host.nodes


def test_a_non_finite_default_is_refused_too():
    from dataclasses import dataclass

    from a2w.host import Params, param

    @dataclass
    class Bad(Params):
        radii: list[float] = param([0.1, float("nan")], "a broken default")

    with pytest.raises(ValueError, match=r"node '/n', parameter 'radii'.*finite"):
        build_params(Bad, {}, "/n")


# -- parameter groups: a driver's own parameters under its name (issue 13 item 2) ------------
def _grouped():
    from dataclasses import dataclass

    from a2w.host import ParamGroup, Params, param

    @dataclass
    class Dev(ParamGroup):
        serials: list[str] = param(["", ""], "one per view")
        rate: float = param(1.0, "Hz", low=0.5)

    @dataclass
    class Node(Params):
        driver: str = param("dev", "which driver")
        dev: Dev = param(Dev(), "the dev driver's parameters")

    return Dev, Node


def test_a_group_declares_its_fields_under_its_name(tmp_path):
    from a2w.launch.runner import LaunchRunner

    Dev, Node = _grouped()
    s = {x.name: x for x in specs(Node)}
    assert list(s) == ["use_sim_time", "driver", "dev.serials", "dev.rate"]
    assert s["dev.rate"].low == 0.5 and s["dev.rate"].description == "Hz"
    assert build_params(Node, {}, "/n").dev == Dev()
    assert Node().dev.serials is not Node().dev.serials  # defaults are not shared between nodes
    # A nested YAML map, a dotted YAML key and a nested launch <param> all name the same parameter.
    yaml_nested = load_param_file(
        write(tmp_path, "n:\n  ros__parameters:\n    dev: {rate: 2, serials: [a, b]}\n"), "/n")
    yaml_dotted = load_param_file(
        write(tmp_path, "n:\n  ros__parameters:\n    dev.rate: 2\n    dev.serials: [a, b]\n"), "/n")
    launch = tmp_path / "t.launch.xml"
    launch.write_text('<launch><node pkg="a2w" exec="camera_node" name="n">'
                      '<param name="dev"><param name="rate" value="2"/></param>'
                      '<param name="dev.serials" value="[a, b]"/></node></launch>')
    from_launch = LaunchRunner().load(launch).nodes[0].params
    for values in (yaml_nested, yaml_dotted, from_launch):
        assert build_params(Node, values, "/n").dev == Dev(["a", "b"], 2.0), values


@pytest.mark.parametrize("values, msg", [
    ({"dev.rate": 0.1}, r"parameter 'dev.rate'.*below the minimum"),
    ({"dev.rate": float("nan")}, r"parameter 'dev.rate'.*finite"),
    ({"dev.serials": [1, 2]}, r"parameter 'dev.serials'.*list of str"),
    ({"dev.nope": 1}, r"unknown parameter\(s\) \['dev.nope'\]"),
    ({"dev": {"rate": 2.0}}, r"unknown parameter\(s\) \['dev'\]"),
    ({"serials": ["a"]}, r"unknown parameter\(s\) \['serials'\].*'dev.serials'"),
])
def test_bad_group_values_name_the_dotted_parameter(values, msg):
    _, Node = _grouped()
    with pytest.raises(ValueError, match=msg):
        build_params(Node, values, "/n")
