"""WordSpout: a tracked stream of words"""
from itertools import cycle

from squall.compat.heronpy.api.spout.spout import Spout


class WordSpout(Spout):
  """Emits the same few words forever, each with a tuple id"""
  outputs = ['word']

  def initialize(self, config, context):
    self.logger.info("initialize() of WordSpout, task %d", context.get_task_id())
    self.words = cycle(["river", "stone", "heron", "reed", "mist"])
    self.emit_count = 0
    self.ack_count = 0
    self.fail_count = 0

  def next_tuple(self):
    self.emit_count += 1
    self.emit([next(self.words)], tup_id=self.emit_count)
    if self.emit_count % 20000 == 0:
      self.logger.info("emitted %d", self.emit_count)

  def ack(self, tup_id):
    self.ack_count += 1

  def fail(self, tup_id):
    self.fail_count += 1
