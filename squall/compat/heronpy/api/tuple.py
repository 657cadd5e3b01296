"""heronpy's ``Tuple`` (Squall's tuple: ``id``, ``component``, ``stream``, ``task``,
``values``) and ``TupleHelper``'s tick constants."""

from squall.topology.component import SYSTEM_COMPONENT, TICK_STREAM, Tuple

__all__ = ["Tuple", "TupleHelper"]


class TupleHelper:
    TICK_TUPLE_ID = TICK_STREAM
    TICK_SOURCE_COMPONENT = SYSTEM_COMPONENT

    @staticmethod
    def is_tick_tuple(tup: Tuple) -> bool:
        return tup.stream == TICK_STREAM
