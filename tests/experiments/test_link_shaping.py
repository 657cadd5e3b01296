"""A board link's shaping as tc commands, and the parser of its class counters: no root
needed. (The testbed tests check the same objects exist on real links.)"""

from __future__ import annotations

import pytest

from squall.control_mark import CS5, tos_byte
from squall.experiments import netns
from squall.experiments.netns import BEST_EFFORT_CLASS, PRIORITY_CLASS, ROOT_CLASS, link_shaping


def _class(commands: list[list[str]], classid: str) -> dict[str, str]:
    [args] = [c for c in commands if c[:2] == ["class", "add"] and c[c.index("classid") + 1] == classid]
    tail = args[args.index("htb") + 1 :]
    return dict(zip(tail[::2], tail[1::2]))


@pytest.mark.parametrize("mbit", [1, 20, 100])
def test_an_htb_root_at_the_link_rate_with_a_priority_and_a_best_effort_class(mbit: float) -> None:
    commands = link_shaping(mbit)
    rate = f"{mbit * 1e6:.0f}bit"
    assert commands[0][:5] == ["qdisc", "replace", "dev", "{dev}", "root"] and "htb" in commands[0]
    assert commands[0][-2:] == ["default", BEST_EFFORT_CLASS.split(":")[1]]  # unmarked: best effort
    root, prio, rest = (_class(commands, c) for c in (ROOT_CLASS, PRIORITY_CLASS, BEST_EFFORT_CLASS))
    assert root["rate"] == root["ceil"] == rate
    assert prio["prio"] == "0" and rest["prio"] == "1"  # what is left over goes to the marks first
    assert prio["ceil"] == rest["ceil"] == rate  # either may borrow the whole link
    # Each is guaranteed a share; the rest of the link goes to the priority class first.
    assert float(prio["rate"][:-3]) == pytest.approx(mbit * 1e6 * netns.PRIORITY_SHARE)
    assert float(rest["rate"][:-3]) == pytest.approx(mbit * 1e6 * netns.BEST_EFFORT_FLOOR)
    assert netns.PRIORITY_SHARE + netns.BEST_EFFORT_FLOOR < 1
    # The tbf's burst (10 ms, at least 4 frames) and queue (50 ms plus the burst) are kept.
    burst = max(int(mbit * 1e6 / 8 / 100), 4 * 1514)
    assert root["burst"] == prio["burst"] == rest["burst"] == str(burst)
    fifos = [c for c in commands if c[:2] == ["qdisc", "add"]]
    assert [c[c.index("parent") + 1] for c in fifos] == [PRIORITY_CLASS, BEST_EFFORT_CLASS]
    assert all(c[-2:] == ["limit", str(int(mbit * 1e6 / 8 * 0.05) + burst)] for c in fifos)


def test_the_filter_sends_cs5_to_the_priority_class_and_nothing_lower() -> None:
    [flt] = [c for c in link_shaping(20) if c[0] == "filter"]
    i = flt.index("tos")
    value, mask = int(flt[i + 1], 16), int(flt[i + 2], 16)
    assert flt[flt.index("flowid") + 1] == PRIORITY_CLASS
    matches = {dscp for dscp in range(64) if tos_byte(dscp) & mask == value}
    assert CS5 in matches and 46 in matches and 48 in matches  # CS5, EF, CS6: video and voice under WMM
    assert matches == set(range(32, 64))  # precedence 4-7; best effort, CS1-CS3 and AF1x-AF3x stay out


SAMPLE = """class htb 1:10 parent 1:1 leaf 10: prio 0 rate 100Kbit ceil 1Mbit burst 6056b cburst 6056b
 Sent 5797 bytes 61 pkt (dropped 0, overlimits 0 requeues 0)
 backlog 0b 0p requeues 0
 lended: 61 borrowed: 0 giants: 0
 tokens: 7500000 ctokens: 750000

class htb 1:1 root rate 1Mbit ceil 1Mbit burst 6056b cburst 6056b
 Sent 1880540 bytes 1301 pkt (dropped 0, overlimits 0 requeues 0)
 backlog 0b 0p requeues 0

class htb 1:20 parent 1:1 leaf 20: prio 1 rate 900Kbit ceil 1Mbit burst 6055b cburst 6056b
 Sent 1874743 bytes 1240 pkt (dropped 244, overlimits 3100 requeues 0)
 backlog 12112b 8p requeues 0
"""


def test_class_counters_are_read_from_tc_s_class_show(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        stdout = SAMPLE

    seen: list[tuple[str, ...]] = []
    monkeypatch.setattr(netns, "sh", lambda *args, check=True: seen.append(args) or Done())
    counters = netns.class_counters("sq0n", "sq-a")
    assert seen == [("tc", "-n", "sq-a", "-s", "class", "show", "dev", "sq0n")]
    assert counters == {
        PRIORITY_CLASS: {"bytes": 5797, "packets": 61, "dropped": 0},
        ROOT_CLASS: {"bytes": 1880540, "packets": 1301, "dropped": 0},
        BEST_EFFORT_CLASS: {"bytes": 1874743, "packets": 1240, "dropped": 244},
    }
