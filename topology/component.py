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

``emit``, ``ack`` and ``fail`` of a running component are bound by the executor that runs
it (``squall.supervisor.runtime``); outside an executor they raise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from squall.topology.spec import DEFAULT_STREAM, StreamSpec

if TYPE_CHECKING:
    from squall.topology.dsl import ComponentBuilder

log = logging.getLogger("squall.component")

TICK_STREAM = "__tick"
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
                    f"stream {self.stream!r} of {self.component!r} has no field {key!r} "
                    f"(fields: {list(self.fields)})"
                ) from None
        return self.values[key]

    def get(self, name: str, default: Any = None) -> Any:
        i = self.fields.get(name)
        return default if i is None else self.values[i]

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not slots: field access by attribute.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

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

    # Bound per task by the executor; instance attributes shadow these, so the hot path is
    # a direct call with no indirection.
    emit = staticmethod(_unbound)

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
    ) -> "ComponentBuilder":
        """Declare this component in a Topology class body (streamparse's ``.spec()``)."""
        from squall.topology.dsl import ComponentBuilder

        return ComponentBuilder(cls, name=name, inputs=inputs, par=par, tasks=tasks, config=config)

    @classmethod
    def output_streams(cls) -> tuple[StreamSpec, ...]:
        """The declared outputs as stream specs: plain field names form the default stream."""
        plain = [o for o in cls.outputs if isinstance(o, str)]
        streams = [o.to_spec() for o in cls.outputs if isinstance(o, Stream)]
        others = [o for o in cls.outputs if not isinstance(o, (str, Stream))]
        if others:
            raise TypeError(f"{cls.__name__}.outputs entries must be field names or Stream, got {others[0]!r}")
        if plain:
            streams.insert(0, StreamSpec(DEFAULT_STREAM, tuple(plain)))
        return tuple(streams)

    def log(self, message: str, level: int = logging.INFO) -> None:
        log.log(level, "%s: %s", type(self).__name__, message)


class Spout(Component):
    """A source of tuples. Emit with ``tup_id=...`` to have the tuple tree tracked."""

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

    def process(self, tup: Tuple) -> None:
        """Handle one input tuple."""
        raise NotImplementedError(f"{type(self).__name__} must implement process(tup)")

    def process_tick(self, tup: Tuple) -> None:
        """Handle a tick tuple (``topology.tick.tuple.freq.secs``)."""
