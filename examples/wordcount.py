"""Word count, the classic shape: sentences -> words (shuffle) -> counts (fields on "word").

Run it in one process:      squall local examples/wordcount.py --seconds 5
"""

from __future__ import annotations

import random
from collections import Counter

from squall import Bolt, Grouping, Spout, Stream, Topology

SENTENCES = [
    "the cow jumped over the moon",
    "an apple a day keeps the doctor away",
    "four score and seven years ago",
    "snow white and the seven dwarfs",
    "i am at two with nature",
]


class Sentences(Spout):
    """Emits random sentences, each tracked so a failure is replayed."""

    outputs = ["sentence"]

    def initialize(self, conf, ctx):
        self.rng = random.Random(ctx.task)
        self.next_id = 0
        self.in_flight: dict[int, str] = {}

    def next_tuple(self):
        sentence = self.rng.choice(SENTENCES)
        tup_id = self.next_id
        self.next_id += 1
        self.in_flight[tup_id] = sentence
        self.emit([sentence], tup_id=tup_id)

    def ack(self, tup_id):
        self.in_flight.pop(tup_id, None)

    def fail(self, tup_id):
        sentence = self.in_flight.get(tup_id)
        if sentence is not None:
            self.emit([sentence], tup_id=tup_id)  # replay


class SplitSentence(Bolt):
    outputs = ["word"]

    def process(self, tup):
        for word in tup["sentence"].split():
            self.emit([word])


class WordCounter(Bolt):
    outputs = [Stream(fields=["word", "count"])]

    def initialize(self, conf, ctx):
        self.counts: Counter[str] = Counter()

    def process(self, tup):
        word = tup["word"]
        self.counts[word] += 1
        self.emit([word, self.counts[word]])


class WordCount(Topology):
    config = {"topology.max.spout.pending": 500}
    sentences = Sentences.spec(par=1)
    split = SplitSentence.spec(inputs=[sentences], par=2)
    count = WordCounter.spec(inputs={split: Grouping.fields("word")}, par=3)
