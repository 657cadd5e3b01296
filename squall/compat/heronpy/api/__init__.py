"""heronpy's ``heronpy.api``."""
