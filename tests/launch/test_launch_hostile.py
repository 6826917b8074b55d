"""Hostile launch files: every one is a LaunchError naming file, line and tag, in bounded time.

The cases are evaluated in a child process so that a hang (the failure these guard against) fails
its test instead of stalling the suite. The limit is generous on purpose: these are not timings.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a2w import nodes
from a2w.launch import LaunchRunner
from a2w.launch.safe_eval import EvalError, evaluate

ROOT = Path(__file__).resolve().parents[2]
GUARD_S = 120

# A long-lived child evaluates the cases one per line (one interpreter start, not one per case).
SERVER = """
import json, sys, traceback
from a2w import nodes
from a2w.launch import LaunchError, LaunchRunner
nodes.NODES["ticker"] = "tests.probe_components:Ticker"
for path in sys.stdin:
    try:
        res = LaunchRunner(env={}).load(path.strip())
    except LaunchError as exc:
        out = {"file": str(exc.file), "line": exc.line, "tag": exc.tag, "text": str(exc)}
    except BaseException:
        out = {"crash": traceback.format_exc()[-3000:]}
    else:
        out = {"ok": [s.name for s in res.nodes]}
    print(json.dumps(out), flush=True)
"""


class Evaluator:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def __call__(self, main: Path) -> dict:
        if self.proc is None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=env)
        self.proc.stdin.write(f"{main}\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], GUARD_S)[0]:
            self.close()  # the next case gets a fresh child
            pytest.fail(f"evaluating {main.name} did not finish within {GUARD_S}s")
        got = json.loads(self.proc.stdout.readline())
        assert "crash" not in got, f"not a LaunchError:\n{got['crash']}"
        return got

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def in_child():
    ev = Evaluator()
    yield ev
    ev.close()


def lines(*body: str) -> str:
    """A launch file with one element per line: line N of the file is body[N-2]."""
    return "\n".join(["<launch>", *body, "</launch>"]) + "\n"


def include(name: str) -> str:
    return f'<include file="{name}"/>'


def node_with(child: str) -> str:
    return f'<node pkg="a2w" exec="ticker">{child}</node>'


def let(expr: str) -> str:
    value = '$(eval "' + expr + '")'
    return f'<let name="v" value={quoteattr(value)}/>'


def alias_bomb(levels: int = 9) -> str:
    rows = ['    l0: &l0 [x, x, x, x, x, x, x, x, x]']
    rows += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "/**:\n  ros__parameters:\n" + "\n".join(rows) + "\n"


def include_fanout(levels: int, width: int) -> dict[str, str]:
    files = {f"f{i}.launch.xml": lines(*[include(f"f{i + 1}.launch.xml")] * width) for i in range(levels)}
    files[f"f{levels}.launch.xml"] = lines()
    files["main.launch.xml"] = lines(include("f0.launch.xml"))
    return files


def include_chain(n: int) -> dict[str, str]:
    files = {f"c{i}.launch.xml": lines(include(f"c{i + 1}.launch.xml")) for i in range(n)}
    files[f"c{n}.launch.xml"] = lines()
    files["main.launch.xml"] = lines(include("c0.launch.xml"))
    return files


def nested(open_tag: str, close_tag: str, depth: int) -> str:
    return "\n".join(["<launch>", *[open_tag] * depth, *[close_tag] * depth, "</launch>"])


# name -> (files, (error file, line or None when only "somewhere inside", tag, text), include chain)
CASES = {
    "include loop, direct": (
        {"main.launch.xml": lines(include("main.launch.xml"))},
        ("main.launch.xml", 2, "include", "include loop"), None),
    "include loop, indirect A->B->A": (
        {"main.launch.xml": lines(include("b.launch.xml")),
         "b.launch.xml": lines("<group/>", include("main.launch.xml"))},
        ("b.launch.xml", 3, "include", "include loop"), "main.launch.xml:2"),
    "include loop through a substitution": (
        {"main.launch.xml": lines(include("$(dirname)/b.launch.xml")),
         "b.launch.xml": lines(include("$(dirname)/./main.launch.xml"))},
        ("b.launch.xml", 2, "include", "include loop"), "main.launch.xml:2"),
    "include of a directory": (
        {"main.launch.xml": lines("<group/>", include("$(dirname)"))},
        ("main.launch.xml", 3, "include", "directory"), None),
    "missing include": (
        {"main.launch.xml": lines(include("nope.launch.xml"))},
        ("main.launch.xml", 2, "include", "not found"), None),
    "include of a FIFO (would block)": (
        {"main.launch.xml": lines(include("pipe")), "pipe": None},
        ("main.launch.xml", 2, "include", "not a regular file"), None),
    "include of a symlink loop": (
        {"main.launch.xml": lines(include("loop.xml")), "loop.xml": "->loop.xml"},
        ("main.launch.xml", 2, "include", "loop.xml"), None),
    "include of YAML": (
        {"main.launch.xml": lines(include("p.yaml")), "p.yaml": "a: [1, 2]\nb: {c: d}\n"},
        ("p.yaml", 1, "launch", "malformed XML"), "main.launch.xml:2"),
    "include of binary bytes": (
        {"main.launch.xml": lines(include("b.bin")), "b.bin": bytes(range(256)) * 4},
        ("b.bin", 1, "launch", "malformed XML"), "main.launch.xml:2"),
    "include of a huge file": (
        {"main.launch.xml": lines(include("big.launch.xml")),
         "big.launch.xml": lines(*['<let name="x" value="1"/>'] * 200_000)},
        ("main.launch.xml", 2, "include", "too large"), None),
    "XML entity expansion": (
        {"main.launch.xml": '<!DOCTYPE launch [<!ENTITY a "aaaaaaaaaa">'
                            + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10 if i else "&a;" * 10}">' for i in range(9))
                            + ']>\n<launch><let name="x" value="&a8;"/></launch>\n'},
        ("main.launch.xml", 1, "launch", "entit"), None),
    "3000 nested groups": (
        {"main.launch.xml": nested("<group>", "</group>", 3000)},
        ("main.launch.xml", None, "group", "nested"), None),
    "3000 nested params": (
        {"main.launch.xml": nested('<param name="p">', "</param>", 3000)
         .replace("<launch>", '<launch><node pkg="a2w" exec="ticker">').replace("</launch>", "</node></launch>")},
        ("main.launch.xml", None, "param", "nested"), None),
    "100 chained includes": (
        include_chain(100), ("c", 2, "include", "nested"), "main.launch.xml:2"),
    "include fan-out 10^9": (
        include_fanout(9, 10), ("f", None, "include", "exceeds"), "main.launch.xml:2"),
    "3000 nested substitutions": (
        {"main.launch.xml": lines('<let name="x" value="y"/>',
                                  f'<let name="v" value="{"$(var " * 3000}x{")" * 3000}"/>')},
        ("main.launch.xml", 3, "let", "nested"), None),
    "let doubling (billion laughs)": (
        {"main.launch.xml": lines('<let name="v" value="ab"/>',
                                  *['<let name="v" value="$(var v)$(var v)"/>'] * 80)},
        ("main.launch.xml", None, "let", "too long"), None),
    "param file alias bomb": (
        {"main.launch.xml": lines(node_with('<param from="bomb.yaml"/>')), "bomb.yaml": alias_bomb()},
        ("main.launch.xml", 2, "param", "alias"), None),
    "param file alias through a merge key": (
        {"main.launch.xml": lines(node_with('<param from="bomb.yaml"/>')),
         "bomb.yaml": "base: &b {ros__parameters: {gain: 1.0}}\n/**:\n  <<: *b\n"},
        ("main.launch.xml", 2, "param", "alias"), None),
    "param value alias bomb": (
        {"main.launch.xml": lines(node_with(
            '<param name="tags" value="[&amp;a [1, 1, 1, 1, 1, 1, 1, 1], &amp;b [*a, *a, *a, *a, *a, *a, *a, *a], '
            '&amp;c [*b, *b, *b, *b, *b, *b, *b, *b], [*c, *c, *c, *c, *c, *c, *c, *c]]"/>'))},
        ("main.launch.xml", 2, "param", "alias"), None),
    "huge param file": (
        {"main.launch.xml": lines(node_with('<param from="big.yaml"/>')),
         "big.yaml": "/**:\n  ros__parameters:\n    tags: [" + ", ".join(["1.0"] * 500_000) + "]\n"},
        ("main.launch.xml", 2, "param", "too large"), None),
    "deeply nested param file": (
        {"main.launch.xml": lines(node_with('<param from="deep.yaml"/>')),
         "deep.yaml": "/**:\n  ros__parameters:\n    tags: " + "[" * 5000 + "]" * 5000 + "\n"},
        ("main.launch.xml", 2, "param", "nested"), None),
    "param file is a directory": (
        {"main.launch.xml": lines(node_with('<param from="$(dirname)"/>'))},
        ("main.launch.xml", 2, "param", "directory"), None),
    "param file is a FIFO": (
        {"main.launch.xml": lines(node_with('<param from="pipe"/>')), "pipe": None},
        ("main.launch.xml", 2, "param", "not a regular file"), None),
    "param file is a symlink loop": (
        {"main.launch.xml": lines(node_with('<param from="loop.yaml"/>')), "loop.yaml": "->loop.yaml"},
        ("main.launch.xml", 2, "param", "loop.yaml"), None),
    "param file is binary": (
        {"main.launch.xml": lines(node_with('<param from="b.yaml"/>')), "b.yaml": bytes(range(256))},
        ("main.launch.xml", 2, "param", "b.yaml"), None),
}

EVAL_REFUSED = {
    # huge powers
    "9**9**9": "large", "10**5000": "large", "2**(2**40)": "large", "(-3)**99999": "large",
    "10.0**5000": "Overflow", "pow(10, 5000)": "pow",
    # huge repeats and strings
    "'a'*10**9": "long", "'ab'*99999999": "long", "10**9*'a'": "long", "[0]*10**9": "not allowed",
    "'%0999999999d' % 1": "not allowed", "str(10**70)*10**6": "long",
    "'x'*9000+'y'*9000": "long", "1+" * 100_000 + "1": "too long",
    # deep nesting
    "(" * 5000 + "1" + ")" * 5000: "long", "-" * 900 + "1": "nested", "[" * 150 + "]" * 150: "nested",
    "not " * 200 + "1": "nested",
    # huge ints
    "int('9'*4000)": "large", "int(1e308)": "large", "round(1e300)": "large", "10**300": "large",
    "99999999999999999999999999999999999999999999999999" * 2: "large",
    # syntax errors and what is not an expression
    "1 +": "syntax", "1 2": "syntax", "import os": "syntax", "__import__('os')": "not allowed",
    "().__class__": "not allowed", "lambda: 1": "not allowed", "[x for x in range(10**9)]": "not allowed",
    "min(*[1])": "not allowed", "round(x=1)": "not allowed", "(-8)**0.5": "complex", "1/0": "division",
    "open('/etc/passwd')": "not allowed", "x": "unknown name",
}


def make(tmp_path: Path, files: dict) -> Path:
    for name, body in files.items():
        p = tmp_path / name
        if body is None:
            os.mkfifo(p)
        elif isinstance(body, bytes):
            p.write_bytes(body)
        elif body.startswith("->"):
            p.symlink_to(body[2:])
        else:
            p.write_text(body)
    return tmp_path / "main.launch.xml"


def check(got: dict, expect: tuple, chain: str | None) -> None:
    file, line, tag, text = expect
    assert "ok" not in got, f"accepted: {got}"
    assert Path(got["file"]).name.startswith(file), got
    if line is not None:
        assert got["line"] == line, got
    else:
        assert got["line"] > 1, got
    assert got["tag"] == tag, got
    assert f"{Path(got['file']).name}:{got['line']}: <{tag}>:" in got["text"]
    assert text.lower() in got["text"].lower(), got["text"][:2000]
    if chain is not None:
        assert chain in got["text"], got["text"][:2000]
    assert len(got["text"]) < 20_000, "the error repeats the hostile input"


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_launch_file_is_a_located_error(in_child, tmp_path, case):
    files, expect, chain = CASES[case]
    check(in_child(make(tmp_path, files)), expect, chain)


@pytest.mark.parametrize("expr", list(EVAL_REFUSED),
                         ids=[e if len(e) < 40 else f"{e[:16]}...({len(e)} chars)" for e in EVAL_REFUSED])
def test_hostile_eval_is_a_located_error(in_child, tmp_path, expr):
    main = make(tmp_path, {"main.launch.xml": lines("<group/>", let(expr))})
    check(in_child(main), ("main.launch.xml", 3, "let", EVAL_REFUSED[expr]), None)


_LEAVES = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
                    st.sampled_from(["True", "pi", "'ab'", "''"]))


def _extend(children):
    ops = ["+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or"]
    return st.one_of(
        st.tuples(children, st.sampled_from(ops), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"(-{c})"), children.map(lambda c: f"abs({c})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"))


@settings(max_examples=300, deadline=None)
@given(st.recursive(_LEAVES, _extend, max_leaves=12))
def test_eval_agrees_with_python_wherever_it_accepts(expr):
    """The subset is Python's semantics, refusing (never hanging) where values would grow."""
    try:
        ours = evaluate(expr)
    except EvalError:
        return
    # Python repeats exactly the computation the bounded evaluator just finished.
    theirs = eval(expr, {"__builtins__": {}}, {"pi": math.pi, "abs": abs})  # noqa: S307
    assert ours == theirs or (ours != ours and theirs != theirs), (expr, ours, theirs)


@pytest.mark.parametrize("value, expected", [
    ("$(eval 2 * 3)", "6"), ("$(eval \"'a' == 'a'\")", "true"), ("$(eval '2 ** 10')", "1024"),
    ("$(eval \"'$(var side)' + '_arm'\")", "left_arm"), ("$(eval 1 if $(var n) > 2 else 0)", "1"),
    ("$(eval round(degrees(pi)))", "180"), ("$(eval max([1, 5, 3]))", "5"),
    ("$(eval \"'$(var side)' in ('left', 'right')\")", "true"), ("$(eval 2**255 // 2**250)", "32"),
])
def test_eval_keeps_ordinary_expressions(tmp_path, value, expected):
    main = make(tmp_path, {"main.launch.xml": lines('<let name="side" value="left"/>', '<let name="n" value="3"/>',
                                                    f'<node pkg="a2w" exec="ticker" name={quoteattr(value)}/>')})
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(nodes.NODES, "ticker", "tests.probe_components:Ticker")
        assert [s.name for s in LaunchRunner(env={}).load(main).nodes] == [expected]
