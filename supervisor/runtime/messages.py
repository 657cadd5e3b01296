"""What flows between executors besides data tuples: the XOR acker's control messages.

An inbox item is ``(target_task, payload)``. For bolts the payload is a ``Tuple``; for the
acker and for spouts it is one of the plain tuples below, cheaper to build and to encode.

A sender that has several messages for one target in one batch sends them as one bulk
message (a bolt's acks and fails to one acker, a spout task's new trees to one acker, an
acker's outcomes to one spout task); one message alone goes in its single form. A bulk
message means exactly its single messages applied in its order (acks before fails for
``ACK_BULK``: a failed tuple's edge is never acked, so its tree cannot complete either way).
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
# Bulk forms:
ACK_BULK = 5  # to an acker: (ACK_BULK, [root, xor, root, xor, ...], [failed root, ...])
ACK_INIT_BULK = 6  # to an acker: (ACK_INIT_BULK, spout_task, [root, xor, root, xor, ...])
TREES_DONE = 7  # to a spout task: (TREES_DONE, [completed root, ...], [failed root, ...])
