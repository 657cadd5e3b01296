"""StreamAggregateBolt: how many tuples came on each stream"""
from collections import Counter

from squall.compat.heronpy.api.bolt.bolt import Bolt


class StreamAggregateBolt(Bolt):
  """Counts tuples per stream"""
  def initialize(self, config, context):
    self.stream_counter = Counter()

  def process(self, tup):
    self.stream_counter[tup.stream] += 1

  def process_tick(self, tup):
    self.log("per stream: %s" % dict(self.stream_counter))
