"""Reference topologies, emulated-board testbed and experiment runners."""
