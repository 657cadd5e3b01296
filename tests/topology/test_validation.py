"""Validation: each fault has its own message naming the component (and stream) at fault,
whether the topology comes from the DSL or from a spec dict (``TopologySpec.from_dict``)."""

from __future__ import annotations

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


def test_an_input_not_declared_in_the_topology_is_an_unknown_component() -> None:
    stray = Words.spec()
    with pytest.raises(
        TopologyError,
        match=r"component 'count' subscribes to unknown component .*Words.*"
        r"not declared in T",
    ):
        build(words=Words.spec(), count=Count.spec(inputs=[stray]))


def test_an_input_from_another_topology_is_an_unknown_component() -> None:
    class Other(Topology):
        words = Words.spec()

    with pytest.raises(TopologyError, match=r"component 'count' subscribes to unknown component"):
        build(words=Words.spec(), count=Count.spec(inputs=[Other.words]))


def test_an_unknown_input_stream_names_the_bolt_the_stream_and_the_declared_streams() -> None:
    words = Words.spec()
    with pytest.raises(
        TopologyError,
        match=r"bolt 'count' subscribes to unknown stream 'nope' of 'words' "
        r"\(declared: 'default'\)",
    ):
        build(words=words, count=Count.spec(inputs=[words["nope"]]))


@pytest.mark.parametrize(
    "grouping", [Grouping.fields("nope"), Grouping.partial_key("word", "nope")], ids=["fields", "partial_key"]
)
def test_a_keyed_grouping_on_an_undeclared_field_names_the_field_and_the_stream(grouping: Any) -> None:
    words = Words.spec()
    with pytest.raises(
        TopologyError,
        match=rf"bolt 'count': {grouping.type} grouping on \['nope'\] but stream "
        r"'default' of 'words' declares fields \['word'\]",
    ):
        build(words=words, count=Count.spec(inputs={words: grouping}))


def test_two_components_with_the_same_name_are_refused() -> None:
    with pytest.raises(TopologyError, match=r"duplicate component name 'x' \(attributes 'a' and 'b'\)"):
        build(a=Words.spec(name="x"), b=Words.spec(name="x"))


def test_one_spec_declared_twice_is_refused() -> None:
    words = Words.spec()
    with pytest.raises(TopologyError, match=r"component 'again' is the same spec as 'words'"):
        build(words=words, again=words)


@pytest.mark.parametrize("par", [0, -1])
def test_par_below_one_is_refused(par: int) -> None:
    words = Words.spec()
    with pytest.raises(TopologyError, match=rf"component 'count': par must be >= 1, got {par}"):
        build(words=words, count=Count.spec(inputs=[words], par=par, tasks=1))


def test_fewer_tasks_than_executors_is_refused() -> None:
    words = Words.spec()
    with pytest.raises(TopologyError, match=r"component 'count': tasks \(1\) must be >= par \(2\)"):
        build(words=words, count=Count.spec(inputs=[words], par=2, tasks=1))


def test_a_class_that_is_neither_spout_nor_bolt_is_refused() -> None:
    with pytest.raises(TopologyError, match=r"component 'weird': 'Weird' is neither a Spout nor a Bolt"):
        build(words=Words.spec(), weird=Weird.spec())


def test_a_topology_without_a_spout_is_refused() -> None:
    with pytest.raises(TopologyError, match=r"topology 'T' has no spout"):
        build(count=Count.spec())


def test_an_input_given_as_a_class_instead_of_a_spec_is_refused() -> None:
    with pytest.raises(TopologyError, match=r"component 'count': input <class .*Words'> is not a spout or bolt spec"):
        build(words=Words.spec(), count=Count.spec(inputs={Words: Grouping.SHUFFLE}))


def test_a_spout_with_inputs_is_refused() -> None:
    words = Words.spec()
    with pytest.raises(TopologyError, match=r"spout 'more' cannot have inputs"):
        build(words=words, more=Words.spec(inputs=[words]))


def test_direct_grouping_on_a_stream_not_declared_direct_is_refused() -> None:
    words = Words.spec()
    with pytest.raises(
        TopologyError,
        match=r"bolt 'count': Grouping.DIRECT needs a direct stream, but 'default' "
        r"of 'words' is not declared direct",
    ):
        build(words=words, count=Count.spec(inputs={words: Grouping.DIRECT}))


def test_a_direct_stream_subscribed_without_direct_grouping_is_refused() -> None:
    events = Events.spec()
    with pytest.raises(
        TopologyError,
        match=r"bolt 'count': stream 'direct_out' of 'events' is direct, so it must "
        r"be subscribed with Grouping.DIRECT",
    ):
        build(events=events, count=Count.spec(inputs={events["direct_out"]: Grouping.SHUFFLE}))


def test_inputs_of_the_wrong_type_are_refused() -> None:
    words = Words.spec()
    with pytest.raises(TopologyError, match=r"component 'count': inputs must be a dict or a list, got str"):
        build(words=words, count=Count.spec(inputs="words"))


def test_a_grouping_that_is_not_a_grouping_is_refused() -> None:
    words = Words.spec()
    with pytest.raises(
        TopologyError,
        match=r"component 'count': grouping for input .* must be a Grouping, "
        r"got 'shuffle'",
    ):
        build(words=words, count=Count.spec(inputs={words: "shuffle"}))


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
