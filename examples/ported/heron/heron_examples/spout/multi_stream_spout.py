"""MultiStreamSpout: words on the default stream, a message on 'error' now and then"""
from itertools import cycle

from squall.compat.heronpy.api.spout.spout import Spout
from squall.compat.heronpy.api.stream import Stream


class MultiStreamSpout(Spout):
  """Every 100th word is followed by an error message"""
  outputs = ['word', Stream(fields=['error_msg'], name='error')]

  def initialize(self, config, context):
    self.words = cycle(["river", "stone", "heron", "reed", "mist"])
    self.emit_count = 0
    self.error_count = 0

  def next_tuple(self):
    self.emit([next(self.words)])
    self.emit_count += 1
    if self.emit_count % 100 == 0:
      self.emit(["word number %d was suspicious" % self.emit_count], stream='error')
      self.error_count += 1
