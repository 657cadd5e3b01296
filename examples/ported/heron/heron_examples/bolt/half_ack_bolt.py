"""HalfAckBolt: acks one tuple, fails the next"""
from squall.compat.heronpy.api.bolt.bolt import Bolt


class HalfAckBolt(Bolt):
  """Half of the tuples are acked and the other half failed"""
  def initialize(self, config, context):
    self.total = 0
    self.ticks = 0

  def process(self, tup):
    self.total += 1
    if self.total % 2 == 0:
      self.logger.debug("failing %s", tup)
      self.fail(tup)
    else:
      self.logger.debug("acking %s", tup)
      self.ack(tup)

  def process_tick(self, tup):
    self.ticks += 1
    self.log("tick! %d received" % self.total, level="info")
