"""``squall quickstart NAME``: create a project that runs with ``squall local`` and submits
to a cluster unchanged.

The project uses streamparse's layout, which ``squall local`` and ``squall submit``
recognise (``squall.topology.project``)::

    NAME/
      README.md              how to run, test and submit it
      config.json            marks the layout (topologies in topologies/)
      pytest.ini             puts src/ and topologies/ on the tests' import path
      topologies/NAME.py     the topology: a spout and a bolt, fields-grouped
      src/spouts/words.py    a spout that emits tracked words and replays failed ones
      src/bolts/count.py     a bolt that counts words and logs progress
      tests/test_NAME.py     a test of the bolt with squall.topology.testing

NAME must be a Python identifier (it names the topology module). An existing non-empty
folder is never written into.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from squall.cli import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="create a new project (topology, spout, bolt, test, README)")
    p.add_argument("name", help="project name: a Python identifier, e.g. wordcount")
    p.add_argument("--dir", default=".", help="where to create the NAME folder (default: here)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = args.name
    if not name.isidentifier() or name.startswith("_"):
        raise UsageError(f"project name {name!r} must be a Python identifier not starting with '_' (e.g. wordcount)")
    root = Path(args.dir) / name
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(f"{root} already exists and is not an empty folder")
    for relative, text in project_files(name).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"created {root}/\n")
    print(f"  cd {root}")
    print(f"  squall local topologies/{name}.py --seconds 5   # run it in one process")
    print("  python -m pytest                                 # run its test")
    print(f"  squall submit topologies/{name}.py               # submit it (Nimbus: --nimbus or $SQUALL_NIMBUS)")
    return 0


def project_files(name: str) -> dict[str, str]:
    """Relative path -> content of every file of a new project called ``name``."""
    title = name.replace("_", " ").title().replace(" ", "")
    return {
        "README.md": README.format(name=name),
        "config.json": json.dumps({"topology_specs": "topologies/"}, indent=4) + "\n",
        "pytest.ini": "[pytest]\npythonpath = src topologies\ntestpaths = tests\n",
        f"topologies/{name}.py": TOPOLOGY.format(name=name, title=title),
        "src/spouts/__init__.py": "",
        "src/spouts/words.py": SPOUT,
        "src/bolts/__init__.py": "",
        "src/bolts/count.py": BOLT,
        f"tests/test_{name}.py": TEST.format(name=name, title=title),
    }


README = """# {name}

A Squall topology: `WordSpout` emits words (each tracked, failed ones replayed) and
`CountBolt` counts them, fields-grouped so each word is counted by one task.

```sh
squall local topologies/{name}.py --seconds 5     # run in one process, print the counts
python -m pytest                                   # test the bolt with squall.topology.testing
squall cluster --supervisors 2                     # a cluster on this machine (another terminal)
squall submit topologies/{name}.py --nimbus 127.0.0.1:6627
```

- `topologies/` holds topologies, `src/` the components they import (`from bolts.count
  import CountBolt`); `squall local` and `squall submit` put both on the import path and
  bundle both for the boards.
- Component logs (`self.logger`) show at INFO in `squall local` (`--log-level` changes it).
- A component that emits on an undeclared stream, or raises on every tuple, makes
  `squall local` exit 1 with the first error.
"""

TOPOLOGY = '''"""The {name} topology: words in, counts out."""

from squall import Grouping, Topology

from bolts.count import CountBolt
from spouts.words import WordSpout


class {title}(Topology):
    config = {{"topology.max.spout.pending": 1000}}
    words = WordSpout.spec(par=1)
    count = CountBolt.spec(inputs={{words: Grouping.fields("word")}}, par=2)
'''

SPOUT = '''"""A spout that emits words forever, each tracked by its sequence number."""

from itertools import cycle

from squall import Spout

WORDS = ["squall", "storm", "breeze", "gale", "gust"]


class WordSpout(Spout):
    outputs = ["word"]

    def initialize(self, conf, ctx):
        self.words = cycle(WORDS)
        self.seq = 0
        self.in_flight = {}  # tup_id -> word, until its tree is acked

    def next_tuple(self):
        self.seq += 1
        word = next(self.words)
        self.in_flight[self.seq] = word
        self.emit([word], self.seq)  # the second argument is the tup_id

    def ack(self, tup_id):
        self.in_flight.pop(tup_id, None)

    def fail(self, tup_id):
        word = self.in_flight.get(tup_id)
        if word is not None:
            self.logger.warning("replaying %r (tuple %s)", word, tup_id)
            self.emit([word], tup_id)
'''

BOLT = '''"""A bolt that counts the words it receives."""

from collections import Counter

from squall import Bolt

LOG_EVERY = 10_000


class CountBolt(Bolt):
    outputs = ["word", "count"]

    def initialize(self, conf, ctx):
        self.counts = Counter()
        self.total = 0

    def process(self, tup):
        word = tup["word"]
        self.counts[word] += 1
        self.total += 1
        if self.total % LOG_EVERY == 0:
            self.logger.info("%d words counted by task %d", self.total, self.task_id)
        self.emit([word, self.counts[word]])  # anchored to tup, acked when process returns
'''

TEST = '''"""CountBolt, tested with squall.topology.testing: a list of words in, the counts out."""

from squall import Grouping, Topology
from squall.topology.testing import CollectBolt, ListSpout, run_local

from bolts.count import CountBolt


class Words(ListSpout):
    outputs = ["word"]
    items = [["gale"], ["gust"], ["gale"], ["storm"], ["gale"]]


class Counts(CollectBolt):
    pass


class Under{title}(Topology):
    words = Words.spec()
    count = CountBolt.spec(inputs={{words: Grouping.fields("word")}}, par=2)
    counts = Counts.spec(inputs=[count])


def test_each_word_is_counted_once_per_occurrence():
    result = run_local(Under{title})
    final = {{}}
    for word, n in result.collected("counts"):
        final[word] = max(n, final.get(word, 0))
    assert final == {{"gale": 3, "gust": 1, "storm": 1}}
    (spout,) = result.instances("words")
    assert sorted(spout.acked) == [0, 1, 2, 3, 4]
'''
