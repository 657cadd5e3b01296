"""The DSL: a class body of ``Component.spec(...)`` declarations becomes a validated
TopologySpec; groupings are frozen values spelled as streamparse spells them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import squall
from squall import Bolt, Grouping, Spout, Stream, Topology
from squall.topology.grouping import GroupingSpec
from squall.topology.spec import InputSpec, StreamSpec
from squall.topology.testing import CollectBolt, ListSpout, run_local


class Words(Spout):
    outputs = ["word", Stream(fields=["reason"], name="errors")]


class Count(Bolt):
    outputs = [Stream(fields=["word", "count"])]

    def process(self, tup: Any) -> None:
        pass


class WordCount(Topology):
    config = {"topology.workers": 2}
    words = Words.spec(par=2)
    count = Count.spec(inputs={words: Grouping.fields("word")}, par=3, tasks=6)
    errors = CollectBolt.spec(name="error-sink", inputs=[words["errors"], count])


def test_components_are_named_after_their_attributes_unless_named() -> None:
    assert [c.name for c in WordCount.spec.components] == ["count", "error-sink", "words"]
    assert WordCount.classes == {"words": Words, "count": Count, "error-sink": CollectBolt}


def test_the_topology_is_named_after_its_class_unless_named() -> None:
    assert WordCount.spec.name == "WordCount"

    class Named(Topology):
        name = "custom"
        words = Words.spec()

    assert Named.spec.name == "custom"


def test_plain_field_names_form_the_default_stream_and_streams_keep_their_flags() -> None:
    words = WordCount.spec.component("words")
    assert words.outputs == (StreamSpec("default", ("word",)), StreamSpec("errors", ("reason",)))
    assert words.kind == "spout" and words.class_ref == f"{__name__}:Words"


def test_inputs_map_components_or_named_streams_to_groupings_a_list_meaning_shuffle() -> None:
    assert WordCount.spec.component("count").inputs == (InputSpec("words", "default", Grouping.fields("word")),)
    assert WordCount.spec.component("error-sink").inputs == (
        InputSpec("words", "errors", Grouping.SHUFFLE),
        InputSpec("count", "default", Grouping.SHUFFLE),
    )


def test_par_tasks_and_config_reach_the_spec() -> None:
    count = WordCount.spec.component("count")
    assert (count.par, count.tasks) == (3, 6)
    assert WordCount.spec.component("words").tasks == 2  # tasks default to par
    assert WordCount.spec.config == {"topology.workers": 2}
    assert WordCount.spec.subscribers("words", "errors") == [
        (WordCount.spec.component("error-sink"), InputSpec("words", "errors", Grouping.SHUFFLE))
    ]


def test_groupings_are_frozen_values_with_streamparse_spelling() -> None:
    assert Grouping.fields("a", "b") == Grouping.fields(["a", "b"]) == GroupingSpec("fields", ("a", "b"))
    assert Grouping.partial_key("a") == GroupingSpec("partial_key", ("a",))
    assert {
        Grouping.SHUFFLE.type,
        Grouping.ALL.type,
        Grouping.GLOBAL.type,
        Grouping.NONE.type,
        Grouping.DIRECT.type,
        Grouping.LOCAL_OR_SHUFFLE.type,
    } == {"shuffle", "all", "global", "none", "direct", "local_or_shuffle"}
    assert str(Grouping.fields("a", "b")) == "fields(a, b)"
    assert GroupingSpec.from_dict(Grouping.fields("a").to_dict()) == Grouping.fields("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Grouping.SHUFFLE.type = "all"  # type: ignore[misc]


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(lambda: GroupingSpec("random"), r"unknown grouping 'random'", id="unknown type"),
        pytest.param(lambda: GroupingSpec("fields"), r"fields grouping needs at least one field", id="fields without"),
        pytest.param(lambda: GroupingSpec("shuffle", ("a",)), r"shuffle grouping takes no fields", id="shuffle with"),
        pytest.param(lambda: Grouping.fields(1), r"grouping field names must be strings", id="non-string field"),
    ],
)
def test_bad_groupings_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_the_user_api_is_reexported_from_squall() -> None:
    assert (squall.Topology, squall.Spout, squall.Bolt, squall.Grouping, squall.Stream) == (
        Topology,
        Spout,
        Bolt,
        Grouping,
        Stream,
    )
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        squall.Nope  # noqa: B018


def test_a_bolt_without_process_says_so() -> None:
    with pytest.raises(NotImplementedError, match="Lazy must implement process"):
        type("Lazy", (Bolt,), {})().process(None)


class Letters(ListSpout):
    outputs = ["letter"]
    items = [["a"], ["b"], ["a"], ["c"]]


class Upper(Bolt):
    outputs = ["letter"]

    def process(self, tup: Any) -> None:
        self.emit([tup["letter"].upper()])


class Sink(CollectBolt):
    pass


class Pipeline(Topology):
    letters = Letters.spec()
    upper = Upper.spec(inputs={letters: Grouping.fields("letter")}, par=2)
    sink = Sink.spec(inputs=[upper])


def test_run_local_runs_a_topology_until_its_input_is_consumed() -> None:
    result = run_local(Pipeline, max_seconds=10)
    assert sorted(result.collected("sink")) == [["A"], ["A"], ["B"], ["C"]]
    (spout,) = result.instances("letters")
    assert sorted(spout.acked) == [0, 1, 2, 3]
    assert result.summary("sink").executed == 4
    with pytest.raises(KeyError):
        result.summary("nope")
