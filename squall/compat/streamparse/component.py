"""streamparse's ``streamparse.component``: the same names as ``streamparse.storm.component``."""

from squall.compat.streamparse.storm.component import *  # noqa: F401,F403
from squall.compat.streamparse.storm.component import __all__  # noqa: F401
