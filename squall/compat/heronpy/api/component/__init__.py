"""heronpy's ``heronpy.api.component``."""
