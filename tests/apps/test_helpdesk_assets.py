"""An asset's history (T18): its page lists its tickets and counts its most frequent
incidents by category; and satisfaction averaged per team over a period (T16)."""
from __future__ import annotations

import re
from collections import Counter

from demo_web import sign_in

from deskbase.rules.access.identity import identity_of


def test_an_asset_page_counts_its_incidents_by_category_most_frequent_first(demo, client):
    asset = demo.read(lambda s: s.query("asset", {"asset_tag": "CHAB-IMP-004"}).records[0])

    def expected(s):
        tickets = s.query("ticket", {"asset": asset.id, "kind": "incident"}, limit=None).records
        counted = Counter(s.get("category", t["subcategory"])["name"] for t in tickets if t["subcategory"])
        return counted.most_common(5)
    counted = demo.read(expected)
    assert counted
    sign_in(client, "cmartin")
    page = client.get(f"/r/{asset.number}").text
    assert "Most frequent incidents, in detail" in page
    section = page.split("Most frequent incidents, in detail")[1].split("</section>")[0]
    rows = re.findall(r'<tr><th><a href="([^"]+)">([^<]+)</a></th><td>(\d+)</td>', section)
    assert [(name.replace("&#39;", "'"), int(count)) for _, name, count in rows] == counted
    assert "Tickets (" in page                   # its tickets, as related records
    link, _, count = rows[0]                    # each count opens the list of those tickets
    listed = client.get(link.replace("&amp;", "&")).text
    assert re.search(r"of (\d+)", listed).group(1) == count


def test_the_summary_counts_only_what_the_reader_may_read(demo, client):
    asset = demo.read(lambda s: s.query("asset", {"asset_tag": "CHAB-IMP-004"}).records[0])
    sign_in(client, "sbernard")              # a technician reads unassigned tickets and their own
    identity = identity_of(demo, "sbernard")
    readable = demo.read(lambda s: s.count("ticket", {"asset": asset.id, "kind": "incident",
                                                      "category": {"empty": False}}), identity=identity)
    page = client.get(f"/r/{asset.number}").text
    section = page.split("Most frequent incidents</h2>")[1].split("</section>")[0]
    assert sum(int(count) for count in re.findall(r"<td>(\d+)</td>", section)) == readable


def test_a_survey_keeps_the_team_of_its_ticket(demo):
    def work(s):
        for survey in s.query("survey", limit=None).records:
            assert survey["group"] == s.get("ticket", survey["ticket"])["group"]
    demo.read(work)


def test_satisfaction_averages_per_team_equal_the_averages_of_the_answers(demo, client):
    view = demo.definitions.views["survey_results_by_team"]
    scores = {"very_satisfied": 5, "satisfied": 4, "neutral": 3, "dissatisfied": 2, "very_dissatisfied": 1}

    def expected(s):
        by_team: dict = {}
        for survey in s.query("survey", view.filter, limit=None).records:
            by_team.setdefault(survey["group"], []).append(scores[survey["rating"]])
        return {team: (sum(values) / len(values), len(values)) for team, values in by_team.items() if team}
    wanted = demo.read(expected)
    found = demo.read(lambda s: {team: (average, count) for team, average, count
                                 in s.average_by("survey", "group", "score", view.filter)})
    assert found == wanted and len(found) >= 2
    sign_in(client, "cmartin")
    home = client.get("/").text
    assert "Average Score (1 to 5) by Group" in home
    shown = sorted(float(value) for value in re.findall(r'class="bar-count">([\d.]+)</text>',
                                                        home.split('<figcaption><a href="/v/survey_results_by_team">')[1].split("</figure>")[0]))
    assert shown == sorted(round(average, 2) for average, _ in wanted.values())
