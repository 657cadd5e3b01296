from itertools import cycle

from squall.compat.streamparse import Spout


class WordSpout(Spout):
    outputs = ["word"]

    def initialize(self, stormconf, context):
        self.words = cycle(["apple", "pear", "plum", "fig"])

    def next_tuple(self):
        self.emit([next(self.words)])
