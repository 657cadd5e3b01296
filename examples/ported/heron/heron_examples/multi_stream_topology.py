"""Multi-stream topology, declared as a class"""
import squall.compat.heronpy.api.api_constants as constants
from squall.compat.heronpy.api.topology import Topology
from squall.compat.heronpy.api.stream import Grouping

from heron_examples.spout import MultiStreamSpout
from heron_examples.bolt import CountBolt, StreamAggregateBolt


class MultiStream(Topology):
  spout = MultiStreamSpout.spec(par=2)
  count_bolt = CountBolt.spec(par=2,
                              inputs={spout: Grouping.fields('word')},
                              config={constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS: 1})
  stream_aggregator = StreamAggregateBolt.spec(par=1,
                                               inputs={spout: Grouping.ALL,
                                                       spout['error']: Grouping.ALL},
                                               config={constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS: 2})
