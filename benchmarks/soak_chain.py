"""The soak's topology: the experiments' reference chain at a steady, modest rate (acking on),
so an hour of churn measures Nimbus, not a saturated machine."""

from squall.experiments.reference import chain_topology

SoakChain = chain_topology(stages=4, replication=2, work=200, rate=200, name="soak-chain")
