"""Board files: classes, defaults, and every malformed input named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from squall.experiments.boards import CLASSES, BoardFileError, default_boards, load_boards, parse_boards

REPO = Path(__file__).resolve().parents[2]


def test_shipped_board_files_load() -> None:
    files = sorted((REPO / "examples" / "boards").glob("*.json"))
    assert files
    for f in files:
        assert load_boards(f)


def test_default_is_heterogeneous_and_matches_the_shipped_file() -> None:
    boards = default_boards()
    assert {b.board_class for b in boards} == {"pi3", "pi4", "pi5"}
    assert [b.board_class for b in boards].count("pi4") == 2
    assert [b.to_dict() for b in load_boards(REPO / "examples" / "boards" / "pis.json")] == [
        b.to_dict() for b in boards
    ]


def test_class_defaults_and_overrides() -> None:
    pi3, pi5 = parse_boards([{"id": "a", "class": "pi3"}, {"id": "b", "class": "pi5", "link_mbit": 20, "slots": 2}])
    assert (pi3.cpu, pi3.memory_mb, pi3.slots, pi3.link_mbit) == (CLASSES["pi3"].cpu, 1024, 1, 100.0)
    assert (pi5.slots, pi5.link_mbit) == (2, 20.0)
    assert pi5.capacity_hz(1e9) > pi3.capacity_hz(1e9)


def test_classes_take_their_slots_from_the_findex() -> None:
    pi3, pi4, pi5 = parse_boards(
        [{"id": "a", "class": "pi3"}, {"id": "b", "class": "pi4"}, {"id": "c", "class": "pi5"}]
    )
    assert (pi3.slots, pi4.slots, pi5.slots) == (1, 2, 4)  # Findex 1 Low, 2 Med, 4 Hi


def test_slots_follow_memory() -> None:
    (small,) = parse_boards({"boards": [{"id": "a", "class": "pi4", "memory_mb": 1024}]})
    assert small.slots == 1


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "non-empty list"),
        ([{"class": "pi4"}], "boards[0]: id must be"),
        ([{"id": "Bad_Id", "class": "pi4"}], "id must be"),
        ([{"id": "a", "class": "pi9"}], "(a): class must be one of pi3, pi4, pi5"),
        ([{"id": "a", "class": ["pi4"]}], "(a): class must be one of pi3, pi4, pi5, got ['pi4']"),
        ([{"id": "a", "class": "pi4", "link": {"wifi": 1}}], "(a): link must be one of"),
        ([{"id": "a", "class": "pi4", "cpu": 0}], "(a): cpu must be a number"),
        ([{"id": "a", "class": "pi4", "link_mbit": "fast"}], "link_mbit must be a number"),
        ([{"id": "a", "class": "pi4", "colour": "red"}], "unknown field(s) colour"),
        ([{"id": "a", "class": "pi4"}, {"id": "a", "class": "pi3"}], "'a' appears twice"),
    ],
    ids=[
        "empty",
        "no id",
        "bad id",
        "unknown class",
        "class a list",
        "link a dict",
        "zero cpu",
        "link not a number",
        "unknown field",
        "duplicate id",
    ],
)
def test_bad_board_files_name_the_fault(data: object, message: str) -> None:
    with pytest.raises(BoardFileError, match=None) as exc:
        parse_boards(data, "f.json")
    assert message in str(exc.value)


def test_unreadable_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(BoardFileError, match="cannot read"):
        load_boards(tmp_path / "missing.json")
    bad = tmp_path / "b.json"
    bad.write_text("boards: [pi4]")
    with pytest.raises(BoardFileError, match="not JSON"):
        load_boards(bad)
    good = tmp_path / "g.json"
    good.write_text(json.dumps([{"id": "x", "class": "pi4"}]))
    assert load_boards(good)[0].id == "x"
