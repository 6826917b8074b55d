import pytest

from a2w.host.params import build_params, load_param_file, specs
from probe_components import TickerParams


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
