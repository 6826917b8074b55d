import textwrap

import pytest

from a2w import nodes
from a2w.launch import LaunchError, LaunchRunner
from a2w.launch.cli import parse_arguments


@pytest.fixture(autouse=True)
def probe_nodes(monkeypatch):
    monkeypatch.setitem(nodes.NODES, "ticker", "tests.probe_components:Ticker")
    monkeypatch.setitem(nodes.NODES, "collector", "tests.probe_components:Collector")


def write(tmp_path, name, body):
    f = tmp_path / name
    f.write_text(textwrap.dedent(body).strip() + "\n")
    return f


def load(tmp_path, body, args=None, env=None, name="main.launch.xml"):
    return LaunchRunner(env=env or {}).load(write(tmp_path, name, body), args or {})


def test_full_subset(tmp_path):
    write(tmp_path, "params.yaml", """
        /robot/left/ticker:
          ros__parameters:
            period: 0.5
            gain: 2.0
    """)
    write(tmp_path, "sub.launch.xml", """
        <launch>
          <arg name="topic" default="ticks"/>
          <node pkg="a2w" exec="collector" name="sink"><param name="topic" value="$(var topic)"/></node>
        </launch>
    """)
    res = load(tmp_path, """
        <launch>
          <arg name="side" default="left" description="which arm"/>
          <arg name="fast" default="false"/>
          <let name="ns" value="robot"/>
          <group>
            <push-ros-namespace namespace="$(var ns)"/>
            <node pkg="a2w" exec="ticker" namespace="$(var side)">
              <param from="$(dirname)/params.yaml"/>
              <param name="count" value="$(eval 2 * 3)"/>
              <param name="tags" value="[a, b]"/>
              <remap from="ticks" to="/out"/>
            </node>
            <node pkg="a2w" exec="ticker" name="fast" if="$(var fast)"/>
            <node pkg="a2w" exec="ticker" name="slow" unless="$(var fast)">
              <param name="mode" value="$(env MODE b)"/>
            </node>
          </group>
          <node pkg="a2w" exec="ticker" name="top"/>
          <include file="$(dirname)/sub.launch.xml"><arg name="topic" value="/out"/></include>
        </launch>
    """, {"side": "left"})
    specs = {f"{s.namespace}/{s.name}".replace("//", "/"): s for s in res.nodes}
    assert set(specs) == {"/robot/left/ticker", "/robot/slow", "/top", "/sink"}
    t = specs["/robot/left/ticker"]
    assert t.params == {"period": 0.5, "gain": 2.0, "count": 6, "tags": ["a", "b"]}
    assert t.remaps == {"ticks": "/out"}
    assert specs["/robot/slow"].params == {"mode": "b"}
    assert specs["/sink"].params == {"topic": "/out"}
    assert res.arguments == {"side": "left", "fast": "false"}


def test_scoped_group_does_not_leak_but_unscoped_does(tmp_path):
    res = load(tmp_path, """
        <launch>
          <group><push-ros-namespace namespace="a"/><let name="x" value="1"/></group>
          <node pkg="a2w" exec="ticker" name="n1"/>
          <group scoped="false"><push-ros-namespace namespace="b"/></group>
          <node pkg="a2w" exec="ticker" name="n2"/>
        </launch>
    """)
    assert [s.namespace for s in res.nodes] == ["/", "/b"]


ERRORS = [
    ("<launch><executable cmd='ls'/></launch>", "executable", "not supported"),
    ("<launch><node pkg='a2w' exec='ticker' respawn='true'/></launch>", "node", "unsupported attribute"),
    ("<launch><node pkg='a2w' exec='nope'/></launch>", "node", "unknown executable 'nope'"),
    ("<launch><node pkg='other' exec='ticker'/></launch>", "node", "unknown package"),
    ("<launch><node exec='ticker'/></launch>", "node", "missing required attribute 'pkg'"),
    ("<launch><arg name='x'/></launch>", "arg", "no default"),
    ("<launch><node pkg='a2w' exec='$(var missing)'/></launch>", "node", "undefined launch argument"),
    ("<launch><node pkg='a2w' exec='ticker' if='maybe'/></launch>", "node", "expected true/false"),
    ("<launch><node pkg='a2w' exec='$(anon x)'/></launch>", "node", "unsupported substitution"),
    ("<launch><node pkg='a2w' exec='$(env NOPE_NOT_SET)'/></launch>", "node", "not set"),
    ("<launch><let name='a' value='$(eval 1/0)'/></launch>", "let", "eval"),
    ("<launch><include file='missing.launch.xml'/></launch>", "include", "file not found"),
    ("<launch><node pkg='a2w' exec='ticker'><param from='nope.yaml'/></node></launch>", "param", "not found"),
    ("<launch><node pkg='a2w' exec='ticker'><param name='a' value='1' from='x.yaml'/></node></launch>", "param",
     "cannot be combined"),
    ("<launch><node pkg='a2w' exec='ticker'><arg name='a'/></node></launch>", "arg", "not supported inside <node>"),
    ("<launch><node pkg='a2w' exec='ticker'>", "launch", "malformed XML"),
    ("<root/>", "root", "must be <launch>"),
    # containers: only a2w's, holding composable nodes only; on_exit as launch's XML frontend takes it
    ("<launch><node_container pkg='a2w' exec='ticker' name='c'/></launch>", "node_container",
     "cannot host a2w components"),
    ("<launch><node_container pkg='rclcpp_components' exec='component_container' name='c'/></launch>",
     "node_container", "cannot host a2w components"),
    ("<launch><node_container pkg='a2w' exec='component_container'/></launch>", "node_container",
     "missing required attribute 'name'"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'><node pkg='a2w' exec='ticker'/>"
     "</node_container></launch>", "node", "not supported inside <node_container>"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'><param name='a' value='1'/>"
     "</node_container></launch>", "param", "unknown container parameter 'a'"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'><param from='x.yaml'/>"
     "</node_container></launch>", "param", "name/value parameters only"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'>"
     "<param name='exit_on_load_error' value='maybe'/></node_container></launch>", "param", "expected true/false"),
    ("<launch><composable_node pkg='a2w' plugin='ticker'/></launch>", "composable_node", "not supported inside"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'>"
     "<composable_node pkg='a2w' plugin='nope'/></node_container></launch>", "composable_node",
     "unknown executable 'nope'"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'>"
     "<composable_node pkg='a2w' plugin='tests.probe_components:Nope'/></node_container></launch>",
     "composable_node", "Nope"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'>"
     "<composable_node pkg='other' plugin='ticker'/></node_container></launch>", "composable_node",
     "unknown package"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c'><composable_node pkg='a2w' "
     "plugin='ticker'><extra_arg name='use_intra_process_comms' value='true'/></composable_node>"
     "</node_container></launch>", "extra_arg", "not supported in the supported launch subset"),
    ("<launch><node pkg='a2w' exec='ticker' on_exit='restart'/></launch>", "node", "on_exit must be 'shutdown'"),
    ("<launch><node_container pkg='a2w' exec='component_container' name='c' on_exit='respawn'/></launch>",
     "node_container", "on_exit must be 'shutdown'"),
    ("<launch><fail_on_node_error code='1'/></launch>", "fail_on_node_error", "unsupported attribute"),
    ("<launch><node pkg='a2w' exec='ticker'><fail_on_node_error/></node></launch>", "fail_on_node_error",
     "not supported inside <node>"),
]


@pytest.mark.parametrize("body, tag, msg", ERRORS)
def test_error_paths_name_file_line_and_tag(tmp_path, body, tag, msg):
    with pytest.raises(LaunchError) as exc:
        load(tmp_path, body)
    text = str(exc.value)
    assert msg in text, text
    if tag != "launch" or "malformed" in msg:
        assert "main.launch.xml:" in text
    assert f"<{tag}>" in text


def test_container_composable_nodes_are_nodes_of_the_run(tmp_path):
    write(tmp_path, "params.yaml", """
        /**:
          ros__parameters:
            gain: 1.0
        /robot/sink:
          ros__parameters:
            topic: /from_file
    """)
    res = load(tmp_path, """
        <launch>
          <arg name="with_sink" default="true"/>
          <fail_on_node_error/>
          <push-ros-namespace namespace="robot"/>
          <node_container pkg="a2w" exec="component_container" name="box" namespace="/" on_exit="shutdown">
            <param name="exit_on_load_error" value="true"/>
            <composable_node pkg="a2w" plugin="ticker" name="first">
              <param name="period" value="0.5"/>
              <remap from="ticks" to="/out"/>
            </composable_node>
            <composable_node pkg="a2w" plugin="tests.probe_components:Collector" name="sink"
                             if="$(var with_sink)">
              <param from="$(dirname)/params.yaml"/>
            </composable_node>
            <composable_node pkg="a2w" plugin="ticker" name="never" unless="$(var with_sink)"/>
          </node_container>
          <node pkg="a2w" exec="ticker" name="after" on_exit="shutdown"/>
        </launch>
    """)
    from tests.probe_components import Collector, Ticker
    # Load order is file order; a composable node's namespace is the pushed one, as in launch_ros.
    assert [(s.namespace, s.name, s.component) for s in res.nodes] == [
        ("/robot", "first", Ticker), ("/robot", "sink", Collector), ("/robot", "after", Ticker)]
    assert res.nodes[0].params == {"period": 0.5} and res.nodes[0].remaps == {"ticks": "/out"}
    assert res.nodes[1].params == {"gain": 1.0, "topic": "/from_file"}


def test_error_line_number(tmp_path):
    with pytest.raises(LaunchError) as exc:
        load(tmp_path, """
            <launch>
              <node pkg="a2w" exec="ticker"/>

              <timer period="1"/>
            </launch>
        """)
    assert exc.value.line == 4


def test_unknown_and_include_arguments(tmp_path):
    with pytest.raises(LaunchError, match=r"unknown launch argument\(s\) \['typo'\]"):
        load(tmp_path, "<launch><arg name='a' default='1'/></launch>", {"typo": "2"})
    write(tmp_path, "inner.launch.xml", "<launch><arg name='x' default='1'/></launch>")
    with pytest.raises(LaunchError, match=r"declares no argument\(s\) \['y'\]"):
        load(tmp_path, "<launch><include file='inner.launch.xml'><arg name='y' value='2'/></include></launch>")


def test_bad_parameter_surfaces_when_the_host_adds_the_node(tmp_path):
    from a2w.host import Host
    res = load(tmp_path, "<launch><node pkg='a2w' exec='ticker'><param name='period' value='fast'/></node></launch>")
    with pytest.raises(ValueError, match="period.*expected a number"):
        Host().add(res.nodes[0])


def test_cli_argument_syntax():
    assert parse_arguments(["a:=1", "b:=x:=y"]) == {"a": "1", "b": "x:=y"}
    with pytest.raises(ValueError, match="name:=value"):
        parse_arguments(["a=1"])
