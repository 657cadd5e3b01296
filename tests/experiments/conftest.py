"""Fixtures of the experiments' tests: a testbed with this run's own prefix and subnet (see
``testbed_helpers``: a testbed someone else has up is never touched), torn down whatever the
test did, and the leftovers of earlier runs that died before their teardown removed."""

from __future__ import annotations

import pytest

from squall.experiments import netns
from squall.experiments.testbed import teardown
from tests.experiments.testbed_helpers import PREFIX, needs_testbed, sweep_dead_runs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment: runs a quick experiment (about a minute or two each)")


@pytest.fixture(scope="session", autouse=True)
def no_dead_runs_left() -> None:
    """Once per run, with root: remove the testbeds of test runs killed before teardown."""
    if netns.unavailable_reason() is None:
        sweep_dead_runs()


@pytest.fixture
def clean_prefix():
    """Skips without root; yields the test prefix and removes everything named with it after."""
    needs_testbed()
    teardown(PREFIX)
    try:
        yield PREFIX
    finally:
        teardown(PREFIX)
