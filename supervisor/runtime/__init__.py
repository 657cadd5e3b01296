"""The worker runtime: executors, routing, the XOR acker and the engine that drives them."""
