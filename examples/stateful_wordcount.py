"""Word count whose counters survive a live rebalance.

The counter is fields-grouped on "word", so each word is counted by one task. When the
online scheduler moves that task's executor to another worker, the task on the new worker
would start from zero — unless the component keeps its state across the move with the two
optional hooks: ``snapshot()`` (called on the old worker, returns bytes) and ``restore(data)``
(called on the new worker after ``initialize``, before any tuple). The spout keeps its
position the same way, so a moved spout neither repeats nor skips sentences.

Run it in one process:      squall local examples/stateful_wordcount.py --seconds 5
"""

from __future__ import annotations

import random
from collections import Counter

import msgpack

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

    def snapshot(self) -> bytes:
        # Trees still pending move with the executor: their acks and fails arrive on the new
        # worker, which needs the sentences to replay a failure.
        return msgpack.packb({"next_id": self.next_id, "in_flight": self.in_flight})

    def restore(self, data: bytes) -> None:
        state = msgpack.unpackb(data, strict_map_key=False)
        self.next_id = state["next_id"]
        self.in_flight = state["in_flight"]


class SplitSentence(Bolt):
    outputs = ["word"]

    def process(self, tup):
        for word in tup["sentence"].split():
            self.emit([word])


class StatefulCounter(Bolt):
    """Counts words; the counts move with the task instead of resetting."""

    outputs = [Stream(fields=["word", "count"])]

    def initialize(self, conf, ctx):
        self.counts: Counter[str] = Counter()

    def process(self, tup):
        word = tup["word"]
        self.counts[word] += 1
        self.emit([word, self.counts[word]])

    def snapshot(self) -> bytes | None:
        return msgpack.packb(dict(self.counts)) if self.counts else None

    def restore(self, data: bytes) -> None:
        self.counts.update(msgpack.unpackb(data))


class StatefulWordCount(Topology):
    config = {"topology.max.spout.pending": 500}
    sentences = Sentences.spec(par=1)
    split = SplitSentence.spec(inputs=[sentences], par=2)
    count = StatefulCounter.spec(inputs={split: Grouping.fields("word")}, par=3)
