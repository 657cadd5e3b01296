"""What flows between executors besides data tuples: the XOR acker's control messages.

An inbox item is ``(target_task, payload)``. For bolts the payload is a ``Tuple``; for the
acker and for spouts it is one of the plain tuples below, cheaper to build and to encode.
"""

from __future__ import annotations

from squall.topology.spec import ACKER_COMPONENT  # noqa: F401  (re-exported)

# To an acker task:
ACK_INIT = 0  # (ACK_INIT, root, xor_of_edges, spout_task)
ACK_ACK = 1  # (ACK_ACK, root, xor_value)
ACK_FAIL = 2  # (ACK_FAIL, root)
# To a spout task:
TREE_COMPLETE = 3  # (TREE_COMPLETE, root)
TREE_FAILED = 4  # (TREE_FAILED, root)
