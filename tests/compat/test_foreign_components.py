"""streamparse's JVM and multilang components are refused when declared, with the reason
and the porting guide named (Squall runs Python components in its own executors only)."""

from __future__ import annotations

import pytest

from squall.compat._adapt import ForeignComponent
from squall.compat.streamparse import JavaBolt, JavaSpout, ShellBolt, ShellSpout
from squall.topology.errors import TopologyError


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        pytest.param(JavaSpout, "Squall runs Python components only", id="JavaSpout"),
        pytest.param(JavaBolt, "Squall runs Python components only", id="JavaBolt"),
        pytest.param(ShellSpout, "not as subprocesses speaking Storm's multilang protocol", id="ShellSpout"),
        pytest.param(ShellBolt, "not as subprocesses speaking Storm's multilang protocol", id="ShellBolt"),
    ],
)
def test_declaring_a_foreign_component_is_refused_with_the_reason(cls: type[ForeignComponent], reason: str) -> None:
    with pytest.raises(TopologyError) as err:
        cls.spec(par=2)
    message = str(err.value)
    assert message.startswith(f"{cls.__name__} ({cls.kind}) does not exist in Squall")
    assert reason in message and "docs/porting.md" in message
