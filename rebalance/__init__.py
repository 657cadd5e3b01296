"""Schedulers and their cost model: pure, deterministic functions (no sockets, processes or clocks)."""
