"""The board daemon and the worker runtime that runs executors."""
