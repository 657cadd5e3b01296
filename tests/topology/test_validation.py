"""Validation: each fault has its own message naming the component (and stream) at fault,
whether the topology comes from the DSL or from a spec dict (``TopologySpec.from_dict``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from squall import Bolt, Grouping, Spout, Stream, Topology
from squall.topology import TopologyError, TopologySpec
from squall.topology.component import Component
from squall.topology.spec import ComponentSpec, InputSpec, StreamSpec


class Words(Spout):
    outputs = ["word"]


class Events(Spout):
    outputs = [Stream(fields=["word"]), Stream(fields=["id"], name="direct_out", direct=True)]


class Count(Bolt):
    outputs = [Stream(fields=["word", "count"])]

    def process(self, tup: Any) -> None:
        pass


class Weird(Component):
    """Neither a spout nor a bolt."""

    outputs = ["x"]


def build(**attrs: Any) -> type[Topology]:
    """Create a Topology class named T from keyword attributes (declaration order kept)."""
    return type("T", (Topology,), attrs)


# -- through the DSL -------------------------------------------------------------------


class OtherTopology(Topology):
    words = Words.spec()


@pytest.mark.parametrize(
    ("beside_words", "message"),
    [
        pytest.param(
            lambda w: {"count": Count.spec(inputs=[Words.spec()])},
            r"component 'count' subscribes to unknown component .*Words.*not declared in T",
            id="input not declared in the topology",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs=[OtherTopology.words])},
            r"component 'count' subscribes to unknown component",
            id="input from another topology",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs=[w["nope"]])},
            r"bolt 'count' subscribes to unknown stream 'nope' of 'words' \(declared: 'default'\)",
            id="unknown input stream: the declared ones named",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs={w: Grouping.fields("nope")})},
            r"bolt 'count': fields grouping on \['nope'\] but stream 'default' of 'words' declares fields \['word'\]",
            id="fields grouping on an undeclared field",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs={w: Grouping.partial_key("word", "nope")})},
            r"bolt 'count': partial_key grouping on \['nope'\] but stream 'default' of 'words' declares fields",
            id="partial_key grouping on an undeclared field",
        ),
        pytest.param(
            lambda w: {"a": Words.spec(name="x"), "b": Words.spec(name="x")},
            r"duplicate component name 'x' \(attributes 'a' and 'b'\)",
            id="two components with the same name",
        ),
        pytest.param(
            lambda w: {"again": w}, r"component 'again' is the same spec as 'words'", id="one spec declared twice"
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs=[w], par=0, tasks=1)},
            r"component 'count': par must be >= 1, got 0",
            id="par 0",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs=[w], par=-1, tasks=1)},
            r"component 'count': par must be >= 1, got -1",
            id="par -1",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs=[w], par=2, tasks=1)},
            r"component 'count': tasks \(1\) must be >= par \(2\)",
            id="fewer tasks than executors",
        ),
        pytest.param(
            lambda w: {"weird": Weird.spec()},
            r"component 'weird': 'Weird' is neither a Spout nor a Bolt",
            id="neither spout nor bolt",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs={Words: Grouping.SHUFFLE})},
            r"component 'count': input <class .*Words'> is not a spout or bolt spec",
            id="input given as a class instead of a spec",
        ),
        pytest.param(
            lambda w: {"more": Words.spec(inputs=[w])}, r"spout 'more' cannot have inputs", id="spout with inputs"
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs={w: Grouping.DIRECT})},
            r"bolt 'count': Grouping.DIRECT needs a direct stream, but 'default' of 'words' is not declared direct",
            id="direct grouping on a stream not declared direct",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs="words")},
            r"component 'count': inputs must be a dict or a list, got str",
            id="inputs of the wrong type",
        ),
        pytest.param(
            lambda w: {"count": Count.spec(inputs={w: "shuffle"})},
            r"component 'count': grouping for input .* must be a Grouping, got 'shuffle'",
            id="grouping that is not a Grouping",
        ),
    ],
)
def test_each_fault_beside_a_words_spout_is_refused_with_its_message(
    beside_words: Callable[[Any], dict[str, Any]], message: str
) -> None:
    words = Words.spec()
    with pytest.raises(TopologyError, match=message):
        build(words=words, **beside_words(words))


def test_the_words_spout_alone_is_a_valid_topology() -> None:
    """The base of the table above: without the fault, nothing is refused."""
    assert [c.name for c in build(words=Words.spec()).spec.components] == ["words"]


def test_a_topology_without_a_spout_is_refused() -> None:
    with pytest.raises(TopologyError, match=r"topology 'T' has no spout"):
        build(count=Count.spec())


def test_a_direct_stream_subscribed_without_direct_grouping_is_refused() -> None:
    events = Events.spec()
    with pytest.raises(
        TopologyError,
        match=r"bolt 'count': stream 'direct_out' of 'events' is direct, so it must "
        r"be subscribed with Grouping.DIRECT",
    ):
        build(events=events, count=Count.spec(inputs={events["direct_out"]: Grouping.SHUFFLE}))


def test_reserved_component_names_are_refused() -> None:
    with pytest.raises(TopologyError, match=r"component name '__acker' is invalid"):
        build(words=Words.spec(name="__acker"))


def test_a_bad_outputs_entry_names_the_component() -> None:
    bad = type("Bad", (Spout,), {"outputs": [42]})
    with pytest.raises(TopologyError, match=r"component 'bad': Bad.outputs entries must be field names or Stream"):
        build(bad=bad.spec())


def test_a_stream_declared_twice_or_repeating_a_field_is_refused() -> None:
    twice = type("Twice", (Spout,), {"outputs": [Stream(["a"], name="s"), Stream(["b"], name="s")]})
    with pytest.raises(TopologyError, match=r"component 'twice' declares stream 's' twice"):
        build(twice=twice.spec())
    repeat = type("Repeat", (Spout,), {"outputs": ["a", "a"]})
    with pytest.raises(TopologyError, match=r"component 'repeat': stream 'default' repeats a field"):
        build(repeat=repeat.spec())


def test_a_topology_with_no_components_is_refused_unless_abstract() -> None:
    with pytest.raises(TopologyError, match=r"topology 'T' has no components"):
        build()

    class Base(Topology):
        __abstract__ = True

    assert Base.spec.components == ()


# -- through spec values (what Nimbus receives) ----------------------------------------


def _spout(name: str = "words") -> ComponentSpec:
    return ComponentSpec(name, "spout", "m:Words", outputs=(StreamSpec("default", ("word",)),))


def _bolt(name: str = "count", *inputs: InputSpec, **kw: Any) -> ComponentSpec:
    return ComponentSpec(name, "bolt", "m:Count", inputs=inputs, **kw)


def _words_into_count(
    component: str = "words", stream: str = "default", grouping: Grouping = Grouping.SHUFFLE
) -> tuple[ComponentSpec, ...]:
    """Spout ``words`` and bolt ``count`` subscribed as given (by default, a valid topology)."""
    return (_spout(), _bolt("count", InputSpec(component, stream, grouping)))


def test_the_base_of_the_spec_faults_is_valid() -> None:
    data = TopologySpec("t", ()).to_dict() | {"components": [c.to_dict() for c in _words_into_count()]}
    assert [c.name for c in TopologySpec.from_dict(data).components] == ["count", "words"]


@pytest.mark.parametrize(
    "components, message",
    [
        pytest.param(
            _words_into_count(component="nope"),
            r"bolt 'count' subscribes to unknown component 'nope'",
            id="unknown component",
        ),
        pytest.param(
            _words_into_count(stream="nope"),
            r"bolt 'count' subscribes to unknown stream 'nope' of 'words'",
            id="unknown stream",
        ),
        pytest.param(
            _words_into_count(grouping=Grouping.fields("x")),
            r"bolt 'count': fields grouping on \['x'\]",
            id="undeclared field",
        ),
        pytest.param((_spout(), _spout()), r"duplicate component name 'words'", id="duplicate names"),
        pytest.param((_spout(), _bolt("count", par=0)), r"component 'count': par must be >= 1", id="par < 1"),
        pytest.param(
            (_spout(), _bolt("count", par=3, tasks=2)),
            r"component 'count': tasks \(2\) must be >= par \(3\)",
            id="tasks < par",
        ),
        pytest.param(
            (_spout(), ComponentSpec("sink", "sink", "m:Sink")),
            r"component 'sink' is neither a spout nor a bolt \(kind 'sink'\)",
            id="neither spout nor bolt",
        ),
        pytest.param((_bolt("count"),), r"topology 't' has no spout", id="no spout"),
        pytest.param(
            (
                _spout(),
                ComponentSpec("more", "spout", "m:W", inputs=(InputSpec("words", "default", Grouping.SHUFFLE),)),
            ),
            r"spout 'more' cannot have inputs",
            id="spout with inputs",
        ),
        pytest.param(
            _words_into_count(grouping=Grouping.DIRECT),
            r"bolt 'count': Grouping.DIRECT needs a direct stream",
            id="direct on a non-direct stream",
        ),
    ],
)
def test_each_fault_in_a_spec_dict_is_refused_with_its_message(components: tuple, message: str) -> None:
    data = TopologySpec("t", ()).to_dict() | {"components": [c.to_dict() for c in components]}
    with pytest.raises(TopologyError, match=message):
        TopologySpec.from_dict(data)
