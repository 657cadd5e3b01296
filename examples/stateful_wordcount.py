"""Word count whose counters survive a live rebalance: ``wordcount.py``'s components, plus
two optional hooks.

The counter is fields-grouped on "word", so each word is counted by one task. When the
online scheduler moves that task's executor to another worker, the task on the new worker
would start from zero — unless the component keeps its state across the move with the two
optional hooks: ``snapshot()`` (called on the old worker, returns bytes) and ``restore(data)``
(called on the new worker after ``initialize``, before any tuple). The spout keeps its
position the same way, so a moved spout neither repeats nor skips sentences.

``from wordcount import ...`` works in a worker as it does here: a topology file's bundle
holds the other modules of its folder.

Run it in one process:      squall local examples/stateful_wordcount.py --seconds 5
"""

from __future__ import annotations

import msgpack
from wordcount import Sentences, SplitSentence, WordCounter

from squall import Grouping, Topology


class MovableSentences(Sentences):
    """Random sentences whose position and pending trees move with the executor."""

    def snapshot(self) -> bytes:
        # Trees still pending move with the executor: their acks and fails arrive on the new
        # worker, which needs the sentences to replay a failure.
        return msgpack.packb({"next_id": self.next_id, "in_flight": self.in_flight})

    def restore(self, data: bytes) -> None:
        state = msgpack.unpackb(data, strict_map_key=False)
        self.next_id = state["next_id"]
        self.in_flight = state["in_flight"]


class StatefulCounter(WordCounter):
    """Counts words; the counts move with the task instead of resetting."""

    def snapshot(self) -> bytes | None:
        return msgpack.packb(dict(self.counts)) if self.counts else None

    def restore(self, data: bytes) -> None:
        self.counts.update(msgpack.unpackb(data))


class StatefulWordCount(Topology):
    config = {"topology.max.spout.pending": 500}
    sentences = MovableSentences.spec(par=1)
    split = SplitSentence.spec(inputs=[sentences], par=2)
    count = StatefulCounter.spec(inputs={split: Grouping.fields("word")}, par=3)
