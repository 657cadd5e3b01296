"""example bolts"""
__all__ = ['count_bolt', 'half_ack_bolt', 'stream_aggregate_bolt']

from .count_bolt import CountBolt
from .half_ack_bolt import HalfAckBolt
from .stream_aggregate_bolt import StreamAggregateBolt
