"""The reference topology of the experiments: a 3-stage chain, replication 2, acking on.

    squall local examples/reference_chain.py --seconds 5

Other shapes: ``chain_topology(stages=5, replication=4, work=2000, rate=500)``.
"""

from squall.experiments.reference import chain_topology

ReferenceChain = chain_topology(stages=3, replication=2, name="reference-chain")
