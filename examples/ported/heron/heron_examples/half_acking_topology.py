"""Half acking: every other tuple fails, tick tuples every second"""
import sys

import squall.compat.heronpy.api.api_constants as constants
from squall.compat.heronpy.api.topology import TopologyBuilder
from squall.compat.heronpy.api.stream import Grouping

from heron_examples.spout import WordSpout
from heron_examples.bolt import HalfAckBolt

if __name__ == '__main__':
  if len(sys.argv) != 2:
    print("Topology's name is not specified")
    sys.exit(1)

  builder = TopologyBuilder(name=sys.argv[1])

  word_spout = builder.add_spout("word_spout", WordSpout, par=2)
  half_ack_bolt = builder.add_bolt("half_ack_bolt", HalfAckBolt, par=2,
                                   inputs={word_spout: Grouping.fields('word')},
                                   config={constants.TOPOLOGY_TICK_TUPLE_FREQ_SECS: 1})

  builder.set_config({constants.TOPOLOGY_RELIABILITY_MODE:
                      constants.TopologyReliabilityMode.ATLEAST_ONCE,
                      constants.TOPOLOGY_MAX_SPOUT_PENDING: 1000,
                      constants.TOPOLOGY_MESSAGE_TIMEOUT_SECS: 300})
  builder.build_and_submit()
