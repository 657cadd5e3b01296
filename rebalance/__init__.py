"""Schedulers and their cost model: pure, deterministic functions (no sockets, processes or clocks).

Every scheduler has one signature::

    schedule(workloads, nodes, params=SchedulerParams(), current=None) -> Assignment

and is found by name with :func:`get_scheduler` ("round_robin", "offline", "online",
"partition"). :func:`evaluate` prices an assignment and :func:`should_apply` decides whether
a proposal is worth applying. Importing this package loads neither zmq nor pymetis.
"""

from squall.rebalance.assignment import Assignment
from squall.rebalance.cost import Cost, Decision, evaluate, should_apply
from squall.rebalance.errors import InfeasibleError, InvalidInputError
from squall.rebalance.model import Executor, Node, Workload, nodes_from_list, workloads_from_json
from squall.rebalance.params import SchedulerParams
from squall.rebalance.registry import SCHEDULERS, Scheduler, get_scheduler

__all__ = [
    "Assignment",
    "Cost",
    "Decision",
    "Executor",
    "InfeasibleError",
    "InvalidInputError",
    "Node",
    "SCHEDULERS",
    "Scheduler",
    "SchedulerParams",
    "Workload",
    "evaluate",
    "get_scheduler",
    "nodes_from_list",
    "should_apply",
    "workloads_from_json",
]
