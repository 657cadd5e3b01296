"""streamparse's ``streamparse.spout``: the same names as ``streamparse.storm.spout``."""

from squall.compat.streamparse.storm.spout import *  # noqa: F401,F403
from squall.compat.streamparse.storm.spout import __all__  # noqa: F401
