"""streamparse's ``streamparse.bolt``: the same names as ``streamparse.storm.bolt``."""

from squall.compat.streamparse.storm.bolt import *  # noqa: F401,F403
from squall.compat.streamparse.storm.bolt import __all__  # noqa: F401
