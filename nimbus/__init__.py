"""The master: a state machine over cluster events, its SQLite store, and the control-plane loop."""
