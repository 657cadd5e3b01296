"""``squall nimbus`` and ``squall supervisor`` share their discovery options: the same
defaults, and the same refusal of a cluster name or port that cannot be used (exit 2, the
option named), before anything starts."""

from __future__ import annotations

import pytest

from squall.cli import build_parser, main
from squall.discovery import DEFAULT_CLUSTER
from squall.discovery import DEFAULT_PORT as DISCOVERY_PORT


@pytest.mark.parametrize("verb", ["nimbus", "supervisor"])
def test_both_daemons_default_to_the_same_cluster_and_port(verb: str) -> None:
    args = build_parser().parse_args([verb])
    assert (args.cluster, args.discovery_port, args.no_discovery) == (DEFAULT_CLUSTER, DISCOVERY_PORT, False)


@pytest.mark.parametrize("verb", ["nimbus", "supervisor"])
@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("--cluster", "", id="empty cluster name"),
        pytest.param("--cluster", "x" * 101, id="cluster name too long"),
        pytest.param("--cluster", "a\nb", id="unprintable cluster name"),
        pytest.param("--discovery-port", "0", id="port 0"),
        pytest.param("--discovery-port", "65536", id="port above 65535"),
    ],
)
def test_a_bad_discovery_option_is_refused_naming_it(
    verb: str, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([verb, option, value]) == 2
    assert option in capsys.readouterr().err
