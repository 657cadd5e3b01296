"""heronpy's ``Topology`` (components as class attributes, a ``config`` dict) and
``TopologyBuilder`` (``add_spout``, ``add_bolt``, ``add_spec``, ``set_config``,
``build_and_submit``).

Heron's topology-wide defaults apply (reliability ATMOST_ONCE, max spout pending 100), and
Heron's reliability mode becomes Squall's acker setting: ATMOST_ONCE runs with no ackers
(``topology.acker.executors`` 0: spouts' ``ack`` follows at once, as in Heron), ATLEAST_ONCE
with Squall's XOR acker; EFFECTIVELY_ONCE is refused (Squall has no stateful checkpoints).

``build_and_submit()`` hands the topology to the ``squall local`` or ``squall submit`` running
the script (``squall.topology.loader.hand_over``) instead of writing Heron's files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from squall.compat.heronpy.api import api_constants as constants
from squall.topology.dsl import ComponentBuilder
from squall.topology.dsl import Topology as _SquallTopology
from squall.topology.errors import TopologyError

if TYPE_CHECKING:
    from squall.compat.heronpy.api.bolt.base_bolt import BaseBolt
    from squall.compat.heronpy.api.spout.base_spout import BaseSpout

__all__ = ["Topology", "TopologyBuilder", "squall_config"]

ACKER_EXECUTORS = "topology.acker.executors"
HERON_DEFAULTS = {
    constants.TOPOLOGY_RELIABILITY_MODE: constants.TopologyReliabilityMode.ATMOST_ONCE,
    constants.TOPOLOGY_MAX_SPOUT_PENDING: 100,
}


def squall_config(config: dict[str, Any]) -> dict[str, Any]:
    """A heron topology config with Heron's defaults, its reliability mode mapped to Squall's
    acker setting, and Heron's string numbers (``"30"``) as numbers where Squall reads them."""
    if not isinstance(config, dict):
        raise TopologyError(f"topology config must be a dict, got {type(config).__name__}")
    conf = {**HERON_DEFAULTS, **config}
    mode = conf[constants.TOPOLOGY_RELIABILITY_MODE]
    if mode == constants.TopologyReliabilityMode.ATMOST_ONCE:
        conf.setdefault(ACKER_EXECUTORS, 0)
    elif mode != constants.TopologyReliabilityMode.ATLEAST_ONCE:
        raise TopologyError(
            f"{constants.TOPOLOGY_RELIABILITY_MODE} {mode!r} is not available in Squall "
            "(it has ATMOST_ONCE and ATLEAST_ONCE; EFFECTIVELY_ONCE needs stateful checkpoints, which Squall lacks)"
        )
    for key in (
        constants.TOPOLOGY_MAX_SPOUT_PENDING,
        constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS,
        constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS,
    ):
        value = conf.get(key)
        if isinstance(value, str):
            try:
                conf[key] = float(value) if "." in value else int(value)
            except ValueError:
                raise TopologyError(f"topology config {key!r} must be a number, got {value!r}") from None
    return conf


class Topology(_SquallTopology):
    """A heron topology declared as a class: ``word_spout = WordSpout.spec(par=2)``."""

    __abstract__ = True
    config: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        cls.config = squall_config(dict(cls.__dict__.get("config", {})))
        super().__init_subclass__(**kwargs)


class TopologyBuilder:
    """Builds a heron topology in a script; ``build_and_submit()`` hands it to Squall."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or name == "Topology":
            raise TopologyError(f"TopologyBuilder needs a topology name (a non-empty string), got {name!r}")
        self.topology_name = name
        self._specs: dict[str, ComponentBuilder] = {}
        self._topology_config: dict[str, Any] = {}

    def add_spec(self, *specs: ComponentBuilder) -> None:
        for spec in specs:
            if not isinstance(spec, ComponentBuilder):
                raise TypeError(f"add_spec takes component specs (Spout.spec(...), Bolt.spec(...)), got {spec!r}")
            if spec.name is None:
                raise ValueError("TopologyBuilder cannot take a spec without a name")
            if spec.name == "config":
                raise ValueError("'config' is a reserved name")
            if spec.name in self._specs:
                raise ValueError(f"duplicate component name {spec.name!r}")
            self._specs[spec.name] = spec

    def add_spout(
        self, name: str, spout_cls: type[BaseSpout], par: int, config: dict | None = None, optional_outputs: Any = None
    ) -> ComponentBuilder:
        spec = spout_cls.spec(name=name, par=par, config=config, optional_outputs=optional_outputs)
        self.add_spec(spec)
        return spec

    def add_bolt(
        self,
        name: str,
        bolt_cls: type[BaseBolt],
        par: int,
        inputs: Any,
        config: dict | None = None,
        optional_outputs: Any = None,
    ) -> ComponentBuilder:
        spec = bolt_cls.spec(name=name, par=par, inputs=inputs, config=config, optional_outputs=optional_outputs)
        self.add_spec(spec)
        return spec

    def set_config(self, config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise TypeError(f"set_config takes a dict, got {config!r}")
        self._topology_config = config

    def build(self) -> type[Topology]:
        """The topology class, validated (an invalid topology raises TopologyError)."""
        body: dict[str, Any] = dict(self._specs)
        body["config"] = dict(self._topology_config)
        return type(self.topology_name, (Topology,), body)

    def build_and_submit(self) -> None:
        """Build, then hand the topology to the ``squall`` command running this script."""
        from squall.topology.loader import hand_over

        hand_over(self.build())
