import os
from collections import Counter

from squall.compat.streamparse import Bolt


class WordCountBolt(Bolt):
    outputs = ["word", "count"]

    def initialize(self, conf, ctx):
        self.counter = Counter()
        self.pid = os.getpid()
        self.total = 0

    def _increment(self, word, inc_by):
        self.counter[word] += inc_by
        self.total += inc_by

    def process(self, tup):
        word = tup.values[0]
        self._increment(word, 5 if word == "fig" else 1)
        if self.total % 5000 == 0:
            self.logger.info(
                "counted %d words so far [pid=%d, task %s of %s]",
                self.total, self.pid, self.task_id, self.topology_name,
            )
        self.emit([word, self.counter[word]])
