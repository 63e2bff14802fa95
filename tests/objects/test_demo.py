"""The demo loader: fixed and generated records from YAML, through the write path."""
from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from deskbase.objects.demo import DemoError, load_demo


def write_demo(folder: Path, **files: str) -> Path:
    demo = folder / "demo"
    demo.mkdir(exist_ok=True)
    for name, text in files.items():
        (demo / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return demo


TEAMS_AND_CATEGORIES = """
    records:
      - {type: team, key: red, values: {name: Red}}
      - {type: team, key: blue, values: {name: Blue}}
      - {type: category, key: hw, values: {name: Hardware}}
      - {type: category, key: sw, values: {name: Software}}
      - {type: category, key: printer, values: {name: Printer, parent: {ref: hw}}}
      - {type: category, key: screen, values: {name: Screen, parent: {ref: hw}}}
      - {type: category, key: erp, values: {name: ERP, parent: {ref: sw}}}
"""

TASKS = """
    generate:
      - type: task
        count: 60
        seed: 3
        variants:
          - {title: "Imprimante en panne", category: {ref: hw}}
          - {title: "Účetnictví padá", category: {ref: sw}}
        values:
          subcategory: {pick_ref: category, where: {parent: $record.category}}
          priority: {pick: [high, medium, low], weights: [1, 2, 1]}
          team: {pick_ref: team, keys: [red, blue]}
          due: {between: ["-10d", "+10d"]}
          estimate: {between: [30m, 4h], step: 30m}
          done: {pick: [true, false]}
          owner: {when: {done: true}, then: {pick: [alice, bob]}, else: null}
          labels: {pick: [urgent, vip, onsite], count: [0, 2]}
          notes: {chance: 0.5, value: {format: "Note {n:03d} for {priority}"}}
"""


@pytest.fixture
def demo_folder(tasks_folder: Path) -> Path:
    return write_demo(tasks_folder, **{"10_reference": TEAMS_AND_CATEGORIES, "20_tasks": TASKS})


def test_demo_creates_fixed_then_generated_records(store, demo_folder):
    created = load_demo(store, demo_folder)
    assert created == {"team": 2, "category": 5, "task": 60}

    def read(s):
        return s.query("task", sort="id", limit=None).records
    tasks = store.read(read)
    assert len(tasks) == 60
    assert {t["created_by"] for t in tasks} == {"demo"}


def test_generated_values_follow_their_rules(store, demo_folder):
    load_demo(store, demo_folder, user="loader")

    def read(s):
        categories = {c.id: c for c in s.query("category", limit=None).records}
        teams = {t.id: t["name"] for t in s.query("team", limit=None).records}
        return categories, teams, s.query("task", sort="id", limit=None).records
    categories, teams, tasks = store.read(read)
    today = datetime.now(timezone.utc).date()
    for task in tasks:
        top = categories[task["category"]]["name"]
        assert categories[task["subcategory"]]["parent"] == task["category"]
        assert (top == "Hardware") == (task["title"] == "Imprimante en panne")
        assert teams[task["team"]] in ("Red", "Blue")
        assert today - timedelta(days=11) <= task["due"] <= today + timedelta(days=11)
        assert 1800 <= task["estimate"] <= 4 * 3600 and task["estimate"] % 1800 == 0
        assert (task["owner"] in ("alice", "bob")) if task["done"] else task["owner"] is None
        assert len(task["labels"]) <= 2 and set(task["labels"]) <= {"urgent", "vip", "onsite"}
        assert task["notes"] in (None, f"Note {task.id:03d} for {task['priority']}")
        assert task["created_by"] == "loader"
    assert {t["priority"] for t in tasks} == {"high", "medium", "low"}
    assert any(t["notes"] for t in tasks) and not all(t["notes"] for t in tasks)


def test_the_same_seed_gives_the_same_records(tasks_definitions, demo_folder):
    from deskbase.objects.store import Store

    def snapshot(store):
        return store.read(lambda s: [dict(r.values, created_at=None, modified_at=None)
                                     for r in s.query("task", sort="id", limit=None).records])
    with Store.open("memory://", tasks_definitions) as first, Store.open("memory://", tasks_definitions) as second:
        load_demo(first, demo_folder)
        load_demo(second, demo_folder)
        assert snapshot(first) == snapshot(second)


def test_a_second_load_is_refused_unless_forced(store, demo_folder):
    load_demo(store, demo_folder)
    with pytest.raises(DemoError) as refused:
        load_demo(store, demo_folder)
    assert "2 team, 5 category, 60 task" in str(refused.value) and "force=True" in str(refused.value)
    assert store.read(lambda s: s.count("task")) == 60
    assert load_demo(store, demo_folder, force=True)["task"] == 60
    assert store.read(lambda s: s.count("task")) == 120


def test_update_closes_a_circle_of_references(store, tasks_folder):
    folder = write_demo(tasks_folder, data="""
        records:
          - {type: category, key: hw, values: {name: Hardware}}
          - {type: task, key: first, values: {title: First, category: {ref: hw}}}
          - {update: first, values: {notes: "set afterwards", due: {at: "+7d"}}}
          - {update: TK-00001, values: {priority: high}}
    """)
    assert load_demo(store, folder) == {"category": 1, "task": 1}
    task = store.read(lambda s: s.find("TK-00001"))
    assert (task["notes"], task["priority"], task.version) == ("set afterwards", "high", 3)
    assert task["due"] == datetime.now(timezone.utc).date() + timedelta(days=7)


@pytest.mark.parametrize("text, expected", [
    ("records:\n  - {type: tsk, values: {title: x}}\n",
     "demo/bad.yaml:2: records[0]: there is no type `tsk`; did you mean `task`?"),
    ("records:\n  - {type: task, values: {titel: x}}\n",
     "demo/bad.yaml:2: records[0]: `titel` is not a field of task; did you mean `title`?"),
    ("records:\n  - {type: task, values: {title: x, team: {ref: nowhere}}}\n",
     "demo/bad.yaml:2: records[0]: team: no record was created with the key `nowhere` before this one"),
    ("records:\n  - {type: task, values: {title: {pik: [a, b]}}}\n",
     "`pik` is not a known value generator (expected ref, pick, pick_ref, between, after, at, chance, when, format); "
     "did you mean `pick`?"),
    ("records:\n  - {type: task, values: {priority: urgent}}\n",
     "demo/bad.yaml:2: records[0]: the Task was not saved:"),
    ("generate:\n  - type: task\n    count: 3\n    values: {title: x, estimate: {between: [1h, 2h]}, notes: {between: [1, 2]}}\n",
     "demo/bad.yaml:2: generate[0] (task): notes: `between` works for dates, times, durations and numbers"),
    ("generate:\n  - type: task\n    count: 2\n    values: {title: x, owner: {when: {done: true}, then: bob}, done: true}\n",
     "`$record.done` is used before `done` is generated; list `done` before `owner`"),
    ("records: []\nrecods: []\n", "demo/bad.yaml:1: recods: `recods` is not a known key (expected records, generate); "
                                 "did you mean `records`?"),
])
def test_a_mistake_is_reported_with_its_file_line_and_entry(store, tasks_folder, text, expected):
    folder = tasks_folder / "demo"
    folder.mkdir()
    (folder / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(DemoError) as refused:
        load_demo(store, folder)
    assert expected in str(refused.value)


def test_a_refused_file_leaves_nothing_of_its_fixed_records(store, tasks_folder):
    folder = write_demo(tasks_folder, data="""
        records:
          - {type: team, values: {name: Fine}}
          - {type: team, values: {}}
    """)
    with pytest.raises(DemoError, match="name: is required"):
        load_demo(store, folder)
    assert store.read(lambda s: s.count("team")) == 0


def test_an_empty_folder_is_reported(store, tmp_path):
    with pytest.raises(DemoError, match="no demo files"):
        load_demo(store, tmp_path)


def test_a_demo_loaded_as_of_a_moment_is_the_same_whatever_the_day(tasks_folder, demo_folder):
    from deskbase.objects.definitions import load_definitions
    from deskbase.objects.store import Store
    moment = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    loads = []
    for _ in range(2):
        with Store.open("memory://", load_definitions(tasks_folder)) as store:
            load_demo(store, demo_folder, now=moment)
            loads.append(store.read(lambda s: [(t["due"], t["created_at"]) for t in s.query("task", sort="id",
                                                                                             limit=None).records]))
    assert loads[0] == loads[1]
    dues = [due for due, _ in loads[0]]
    assert min(dues) >= (moment - timedelta(days=10)).date() and max(dues) <= (moment + timedelta(days=10)).date()
    assert {created for _, created in loads[0]} == {moment}
