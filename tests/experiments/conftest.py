"""Fixtures of the experiments' tests: a testbed with its own prefix and subnet (so a testbed
someone has up with the default prefix is never touched), torn down whatever the test did."""

from __future__ import annotations

import os

import pytest

from squall.experiments import netns
from squall.experiments.testbed import teardown

# Overridable, so engineers sharing a machine can run these tests at once without clashing.
PREFIX = os.environ.get("SQUALL_TEST_PREFIX", "sqtt")
SUBNET = os.environ.get("SQUALL_TEST_SUBNET", "10.232.0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment: runs a quick experiment (about a minute or two each)")


def needs_testbed() -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(f"emulated boards unavailable: {reason}")


@pytest.fixture
def clean_prefix():
    """Skips without root; yields the test prefix and removes everything named with it after."""
    needs_testbed()
    teardown(PREFIX)
    try:
        yield PREFIX
    finally:
        teardown(PREFIX)
