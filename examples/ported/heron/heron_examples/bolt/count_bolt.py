"""CountBolt: counts words, acks each one"""
from collections import Counter

from squall.compat.heronpy.api import global_metrics
from squall.compat.heronpy.api.bolt.bolt import Bolt


class CountBolt(Bolt):
  """Counts the words it is given"""
  outputs = ['word', 'count']

  def initialize(self, config, context):
    self.counter = Counter()
    self.total = 0
    self.ticks = 0

  def process(self, tup):
    word = tup.values[0]
    self.counter[word] += 1
    self.total += 1
    global_metrics.safe_incr('count')
    self.emit([word, self.counter[word]], anchors=[tup])
    self.ack(tup)

  def process_tick(self, tup):
    self.ticks += 1
    self.log("tick: %d words so far" % self.total)
