"""Spouts, bolts, streams and tuples: the classes users subclass and the values they handle.

The shapes are streamparse's and heronpy's::

    class Words(Spout):
        outputs = ["word"]
        def next_tuple(self):
            self.emit([random.choice(WORDS)], tup_id=next(self.ids))

    class Count(Bolt):
        outputs = [Stream(fields=["word", "count"])]
        def process(self, tup):
            self.emit([tup["word"], 1])

A bolt may define ``process_many(self, tups)`` instead, to handle a run of tuples in one
call, and any component may ``emit_many`` a list (see ``Bolt.process_many``).

``emit``, ``ack`` and ``fail`` of a running component are bound by the executor that runs
it (``squall.supervisor.runtime``); outside an executor they raise. The positional order of
``emit`` is streamparse's and heronpy's: ``tup_id`` second for spouts, ``stream`` second for
bolts. The executor also gives each instance ``topology_name``, ``component_name``,
``task_id`` and ``logger`` (a standard logger named ``squall.task.<component>.<task>``)
before ``initialize`` is called.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from squall.topology.errors import EmitError
from squall.topology.spec import DEFAULT_STREAM, StreamSpec

if TYPE_CHECKING:
    from squall.topology.dsl import ComponentBuilder

log = logging.getLogger("squall.component")
TASK_LOGGER_PREFIX = "squall.task"

# streamparse and heronpy pass log levels by name; Storm's "trace" is below debug.
_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

TICK_STREAM = "__tick"
TICK_SOURCE_TASK = -1  # the ``task`` of every tick tuple, and of no other tuple
SYSTEM_COMPONENT = "__system"


@dataclass(frozen=True)
class Stream:
    """A declared output stream: ``Stream(fields=["word"], name="errors")``."""

    fields: Sequence[str]
    name: str = DEFAULT_STREAM
    direct: bool = False

    def to_spec(self) -> StreamSpec:
        return StreamSpec(name=self.name, fields=tuple(self.fields), direct=self.direct)


class Tuple:
    """A tuple as a bolt receives it.

    ``component``, ``stream`` and ``task`` name where it came from (the source task, as in
    Storm); ``values`` is the list emitted; ``tup["word"]``, ``tup.get("word")`` and
    ``tup.word`` read a field by name. ``id`` identifies a tracked tuple (acking on), else None.

    A field reads as an attribute through a class-level property made for its name
    (``declare_field_names``) when an engine starts for a topology declaring it, or a Tuple is
    built with it, not through ``__getattr__``: on this interpreter a class with
    ``__getattr__`` gets none of its attribute reads specialised, which made every read of a
    slot on the hot path (``stream``, ``roots``, ``done``, ...) cost about 300 instructions
    more. A slot, method or property of the class wins over a field of the same name, as it
    did; a name that is no field anywhere raises Python's own ``AttributeError``.
    """

    __slots__ = ("component", "stream", "task", "values", "fields", "roots", "ack_val", "done")

    def __init__(
        self,
        component: str,
        stream: str,
        task: int,
        values: Sequence[Any],
        fields: dict[str, int],
        roots: dict[int, int] | None = None,
    ) -> None:
        self.component = component
        self.stream = stream
        self.task = task
        self.values = values
        self.fields = fields  # field name -> index, shared by every tuple of the stream
        self.roots = roots  # root id -> edge id, for the XOR acker; None when untracked
        self.ack_val = 0  # XOR of the edges anchored on this tuple since it arrived
        self.done = False  # acked or failed already
        if not _FIELD_NAMES.issuperset(fields):
            declare_field_names(fields)

    @property
    def id(self) -> int | None:
        roots = self.roots
        if not roots:
            return None
        root, edge = next(iter(roots.items()))
        return root ^ edge

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            try:
                return self.values[self.fields[key]]
            except KeyError:
                raise KeyError(
                    f"stream {self.stream!r} of {self.component!r} has no field {key!r} (fields: {list(self.fields)})"
                ) from None
        return self.values[key]

    def get(self, name: str, default: Any = None) -> Any:
        i = self.fields.get(name)
        return default if i is None else self.values[i]

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return (
            f"Tuple(component={self.component!r}, stream={self.stream!r}, task={self.task}, "
            f"values={list(self.values)!r})"
        )

    @property
    def is_tick(self) -> bool:
        return self.stream == TICK_STREAM


# Every name ``declare_field_names`` was given (a property of Tuple, unless the class had it).
_FIELD_NAMES: set[str] = set()


def _field_property(name: str) -> property:
    def read(self: Tuple) -> Any:
        try:
            return self[name]
        except KeyError as exc:  # this tuple's stream has no such field
            raise AttributeError(str(exc)) from None

    return property(read, doc=f"The field {name!r} of a tuple whose stream declares it.")


def declare_field_names(names: Iterable[str]) -> None:
    """Make each field name readable as an attribute of every ``Tuple`` (``tup.word``): a
    property reading the tuple's own field of that name, raising ``AttributeError`` with the
    stream, component and fields when its stream has none. Names of the class's own slots,
    methods and properties, and names starting with ``_``, stay what they are. Idempotent;
    called for a topology's declared fields when an engine is built, and by ``Tuple()``."""
    for name in names:
        if name in _FIELD_NAMES:
            continue
        _FIELD_NAMES.add(name)
        if not name.startswith("_") and not hasattr(Tuple, name):
            setattr(Tuple, name, _field_property(name))


@dataclass
class Context:
    """What a running component knows about its place in the topology."""

    topology: str
    component: str
    task: int
    component_tasks: list[int]
    task_to_component: dict[int, str]
    outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def task_index(self) -> int:
        """This task's index among its component's tasks (0-based)."""
        return self.component_tasks.index(self.task)


def _unbound(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("emit/ack/fail are only available while the component runs in an executor")


class Component:
    """Base of Spout and Bolt. Subclass one of those, not this."""

    outputs: ClassVar[Sequence[str | Stream]] = ()

    # ``_squall_emit`` (a name no user class is likely to take: a component of ours once had
    # its own ``_emit``) is bound per task by the executor. When a class does not override ``emit``,
    # each task's instance is of a subclass made for that task (same name, qualified name and
    # module) whose ``emit`` method is the task's emit function: a call with no indirection,
    # which the interpreter specialises as a method call (an instance attribute shadowing
    # the method it would not). A class that overrides ``emit`` (ReliableSpout, BatchingBolt,
    # a user's own) keeps its class and its method, and its ``super().emit(...)`` reaches
    # ``_squall_emit``.
    _squall_emit = staticmethod(_unbound)

    # Set per task by the executor before ``initialize``; these defaults serve components
    # built outside an executor (unit tests of a component alone).
    topology_name: str = ""
    component_name: str = ""
    task_id: int = -1
    logger: logging.Logger = log

    def initialize(self, conf: dict[str, Any], ctx: Context) -> None:
        """Called once per task before any tuple; override to set up state."""

    def snapshot(self) -> bytes | None:
        """This task's state, when its executor moves to another worker (a live rebalance).

        Called on the old worker after the task's last tuple there; the bytes travel (through
        Nimbus) to the new worker, which passes them to ``restore``. Return None (the default)
        for a component without state worth keeping: the new instance then starts from
        ``initialize`` alone. Encode with msgpack or json, not pickle; keep it small (it rides
        on heartbeats). If this raises, the error is logged and the task moves without state.
        """
        return None

    def restore(self, data: bytes) -> None:
        """Take over the state ``snapshot`` returned on the worker this task left.

        Called on the new worker after ``initialize`` and before any tuple, ack or fail
        reaches this task; never called when ``snapshot`` returned None. If this raises, the
        error is logged and the task runs with the state ``initialize`` gave it.
        """

    @classmethod
    def spec(
        cls,
        name: str | None = None,
        inputs: Any = None,
        par: int = 1,
        tasks: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> ComponentBuilder:
        """Declare this component in a Topology class body (streamparse's ``.spec()``)."""
        from squall.topology.dsl import ComponentBuilder

        return ComponentBuilder(cls, name=name, inputs=inputs, par=par, tasks=tasks, config=config)

    @classmethod
    def output_streams(cls, extra: Sequence[str | Stream] = ()) -> tuple[StreamSpec, ...]:
        """The declared outputs (``outputs``, then ``extra``: heronpy's ``optional_outputs``)
        as stream specs: plain field names form the default stream."""
        outputs = [*(cls.outputs or ()), *extra]
        plain = [o for o in outputs if isinstance(o, str)]
        streams = [o.to_spec() for o in outputs if isinstance(o, Stream)]
        others = [o for o in outputs if not isinstance(o, (str, Stream))]
        if others:
            raise TypeError(f"{cls.__name__}.outputs entries must be field names or Stream, got {others[0]!r}")
        if plain:
            streams.insert(0, StreamSpec(DEFAULT_STREAM, tuple(plain)))
        return tuple(streams)

    def log(self, message: str, level: int | str | None = None) -> None:
        """Log ``message`` on this task's logger; ``level`` is a name as streamparse and heronpy
        take it (``"debug"``, ``"info"``, ``"warn"``, ``"warning"``, ``"error"``,
        ``"critical"``, ``"trace"``), a ``logging`` number, or None for info."""
        self.logger.log(_level_number(level), "%s", message)

    def raise_exception(self, exception: BaseException, tup: Any = None) -> None:
        """Report an error without stopping the task (streamparse's ``raise_exception``):
        logged on this task's logger with its traceback and counted in the component's
        ``errors``, like an exception raised from ``process``."""
        about = f" while handling {tup!r}" if tup is not None else ""
        self.logger.error("%s%s", exception, about, exc_info=exception)
        self._squall_report_error(exception)

    # Bound by the executor: counts a reported error in the executor's stats.
    _squall_report_error = staticmethod(lambda exc: None)


def check_anchors_each(component: str, tuples: Sequence[Any], anchors: Any, anchors_each: Sequence[Any]) -> None:
    """The checks of ``emit_many(..., anchors_each=)`` that do not depend on the stream."""
    if anchors is not None:
        raise EmitError(f"{component!r} emit_many: give anchors= (the same for every tuple) or anchors_each=, not both")
    if len(anchors_each) != len(tuples):
        raise EmitError(f"{component!r} emit_many: {len(tuples)} tuples but {len(anchors_each)} anchors_each")


def _level_number(level: int | str | None) -> int:
    if level is None:
        return logging.INFO
    if isinstance(level, int):
        return level
    number = _LEVELS.get(str(level).lower())
    if number is None:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(_LEVELS)})")
    return number


class Spout(Component):
    """A source of tuples. Emit with a ``tup_id`` to have the tuple tree tracked."""

    def emit(
        self,
        values: Sequence[Any],
        tup_id: Any = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int]:
        """Emit ``values`` on ``stream`` (default: the default stream); with a ``tup_id`` the
        tree is tracked and ``ack(tup_id)`` or ``fail(tup_id)`` follows. Returns the task
        ids the tuple went to (always, so ``need_task_ids`` is accepted and changes nothing)."""
        return self._squall_emit(values, tup_id, stream, direct_task, need_task_ids)

    def emit_many(
        self,
        tuples: Sequence[Sequence[Any]],
        tup_ids: Sequence[Any] | None = None,
        stream: str | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[list[int]]:
        """``emit`` each of ``tuples``, the i-th with ``tup_ids[i]`` when given (each starts
        its own tree, counted one by one against ``topology.max.spout.pending``); returns each
        emit's task ids. In an executor this is one call for the whole list, without a Python
        frame per tuple, and with every check ``emit`` makes."""
        if tup_ids is not None and len(tup_ids) != len(tuples):
            raise EmitError(f"{self.component_name!r} emit_many: {len(tuples)} tuples but {len(tup_ids)} tup_ids")
        ids = tup_ids if tup_ids is not None else [None] * len(tuples)
        return [self.emit(values, i, stream, direct_task, need_task_ids) for values, i in zip(tuples, ids)]

    def next_tuple(self) -> None:
        """Emit zero or more tuples; called repeatedly while the topology is active."""

    def next_tuple_due(self) -> float | None:
        """Optional: the ``time.monotonic()`` instant at which ``next_tuple`` will next have
        something to emit (a spout that paces itself knows it), so an idle worker sleeps
        until then instead of polling. None (the default): unknown, and the worker calls
        ``next_tuple`` again after a short wait (1 ms, as Storm's spout wait strategy)."""
        return None

    def ack(self, tup_id: Any) -> None:
        """The tuple tree rooted at ``tup_id`` was fully processed."""

    def fail(self, tup_id: Any) -> None:
        """The tuple tree rooted at ``tup_id`` failed or timed out; replay it if you like."""

    def activate(self) -> None:
        """The topology was activated; ``next_tuple`` will be called."""

    def deactivate(self) -> None:
        """The topology was deactivated; ``next_tuple`` will not be called until activation."""


class Bolt(Component):
    """A processing step. With the defaults, each input is anchored, acked on return and
    failed if ``process`` raises."""

    auto_ack: ClassVar[bool] = True
    auto_anchor: ClassVar[bool] = True
    auto_fail: ClassVar[bool] = True

    ack = staticmethod(_unbound)
    fail = staticmethod(_unbound)

    def emit(
        self,
        values: Sequence[Any],
        stream: str | None = None,
        anchors: Any = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int]:
        """Emit ``values`` on ``stream``, anchored to ``anchors`` (default: the tuple being
        processed, when ``auto_anchor``). Returns the task ids the tuple went to."""
        return self._squall_emit(values, stream, anchors, direct_task, need_task_ids)

    def emit_many(
        self,
        tuples: Sequence[Sequence[Any]],
        stream: str | None = None,
        anchors: Any = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
        anchors_each: Sequence[Tuple | Sequence[Tuple]] | None = None,
    ) -> list[list[int]]:
        """``emit`` each of ``tuples`` on the same stream; returns each emit's task ids.

        ``anchors`` (as in streamparse) anchors every tuple to the same inputs, default the
        tuple being processed (``auto_anchor``); ``anchors_each`` pairs them instead: the
        i-th tuple is anchored to ``anchors_each[i]`` (a tuple or a list of tuples), the
        natural shape in ``process_many``. Give one or the other. In an executor this is one
        call for the whole list, without a Python frame per tuple, and with every check
        ``emit`` makes."""
        if anchors_each is None:
            return [self.emit(values, stream, anchors, direct_task, need_task_ids) for values in tuples]
        check_anchors_each(self.component_name, tuples, anchors, anchors_each)
        return [
            self.emit(values, stream, anchor, direct_task, need_task_ids)
            for values, anchor in zip(tuples, anchors_each)
        ]

    def process_many(self, tups: list[Tuple]) -> None:
        """Optional: handle a run of input tuples in one call (not ticks: those still go to
        ``process_tick``). A bolt that overrides this is called with each task's tuples of an
        inbox batch, in arrival order, and ``process`` is never called; the guarantees of
        ``process`` hold for the whole run: every input is acked after a normal return
        (``auto_ack``), every input not yet acked or failed is failed if it raises
        (``auto_fail``). There is no current tuple to anchor to: while acking is on and
        ``auto_anchor`` is set, an emit must name its anchors (``anchors=`` or
        ``emit_many(..., anchors_each=tups)``), else it raises ``EmitError``; ``anchors=()``
        emits unanchored on purpose. See docs/worker.md, "A batch-aware user API"."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(tup) or process_many(tups)")

    @staticmethod
    def is_tick(tup: Tuple) -> bool:
        """True for a tick tuple (heronpy's and pystorm's ``is_tick``)."""
        return tup.stream == TICK_STREAM

    def process(self, tup: Tuple) -> None:
        """Handle one input tuple."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(tup) or process_many(tups)")

    def process_tick(self, tup: Tuple) -> None:
        """Handle a tick tuple (``topology.tick.tuple.freq.secs``)."""
