from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from deskbase.objects import filters
from deskbase.objects.errors import FieldError, QueryError
from deskbase.objects.fields import StringKind
from deskbase.objects.filters import compile_filter

UTC = timezone.utc
ALL = [1, 2, 3, 4, 5]


@pytest.fixture
def records(values):
    return [
        values(1, status="open", priority="urgent", title="Tiskárna v Paříži", size=10, price=Decimal("2.50"),
               due=date(2026, 3, 1), start=datetime(2026, 1, 10, 8, tzinfo=UTC), flag=True, owner="alice",
               team=1, watchers=(7, 8), tags=("red",)),
        values(2, status="open", priority="low", title="Écran cassé", size=50, price=Decimal("10.00"),
               due=date(2026, 4, 1), flag=False, owner="bob", team=2, watchers=(8,), tags=("red", "blue")),
        values(3, status="done", priority="high", title="Printer in Paris", size=0,
               start=datetime(2026, 1, 12, 10, tzinfo=UTC), owner="alice", watchers=(), tags=()),
        values(4, status="new", title="Đuro's keyboard", notes="Printer ink is low"),
        values(5),
    ]


@pytest.fixture(params=["set operations", "id by id"])
def find(request, item_type, items, records, monkeypatch):
    """`find(spec, **context)`: the ids the filter matches, asserting that the index
    evaluator (both of its ways of working) and the in-memory evaluator agree."""
    if request.param == "id by id":
        monkeypatch.setattr(filters, "_narrows", lambda found, probe: True)   # And checks id by id
    indexes = items(*records)

    def run(spec, **context):
        compiled = compile_filter(spec, item_type)
        by_index = sorted(compiled.ids(indexes, item_type, context))
        in_memory = [v["id"] for v in records if compiled.matches(v, item_type, context)]
        assert by_index == in_memory
        return by_index
    return run


def refused(spec, typedef, **options) -> QueryError:
    with pytest.raises(QueryError) as caught:
        compile_filter(spec, typedef, **options)
    return caught.value


# -- values and operators -------------------------------------------------------------------

def test_a_value_matches_the_records_holding_it(find):
    assert find({"status": "open"}) == [1, 2]
    assert find({"status": {"eq": "open"}}) == [1, 2]


def test_a_list_matches_any_of_its_values(find):
    assert find({"status": ["open", "new"]}) == [1, 2, 4]
    assert find({"status": {"in": ["open", "new"]}}) == [1, 2, 4]


def test_null_matches_records_without_a_value(find):
    assert find({"priority": None}) == [4, 5]
    assert find({"priority": {"eq": None}}) == [4, 5]


def test_a_list_holding_null_also_matches_records_without_a_value(find):
    assert find({"priority": ["urgent", None]}) == [1, 4, 5]


def test_ne_matches_records_without_a_value(find):
    assert find({"priority": {"ne": "urgent"}}) == [2, 3, 4, 5]
    assert find({"priority": {"ne": None}}) == [1, 2, 3]


def test_not_in_matches_records_without_a_value(find):
    assert find({"status": {"not_in": ["open"]}}) == [3, 4, 5]


def test_empty_true_and_false_split_the_records(find):
    assert find({"size": {"empty": True}}) == [4, 5]
    assert find({"size": {"empty": False}}) == [1, 2, 3]


def test_enum_ranges_follow_the_order_of_the_list(find):
    assert find({"priority": {"lte": "high"}}) == [1, 3]
    assert find({"priority": {"lt": "high"}}) == [1]
    assert find({"priority": {"gt": "high"}}) == [2]
    assert find({"priority": {"gte": "High"}}) == [2, 3]   # values are read as the kind reads them


def test_ranges_never_match_records_without_a_value(find):
    assert find({"size": {"gte": 0}}) == [1, 2, 3]
    assert find({"size": {"lt": 100}}) == [1, 2, 3]


def test_range_bounds_may_lie_beyond_the_limits_of_the_field(find):
    assert find({"size": {"lt": 1000}}) == [1, 2, 3]
    assert find({"size": {"gt": -5}}) == [1, 2, 3]


def test_ranges_compare_days_moments_and_amounts(find):
    assert find({"due": {"gt": "2026-03-01"}}) == [2]
    assert find({"due": {"gte": date(2026, 3, 1)}}) == [1, 2]
    assert find({"start": {"lt": "2026-01-11"}}) == [1]
    assert find({"start": {"gt": "2026-01-12 09:00+00:00"}}) == [3]
    assert find({"price": {"gte": "2,50"}}) == [1, 2]


def test_several_operators_on_one_field_must_all_hold(find):
    assert find({"size": {"gt": 0, "lt": 50}}) == [1]


def test_several_fields_must_all_hold(find):
    assert find({"status": "open", "owner": "alice"}) == [1]


def test_booleans_match_true_and_false_apart_from_empty(find):
    assert find({"flag": True}) == [1]
    assert find({"flag": "no"}) == [2]
    assert find({"flag": None}) == [3, 4, 5]


def test_strings_compare_exactly(find):
    assert find({"title": "Printer in Paris"}) == [3]
    assert find({"title": "printer in paris"}) == []


def test_a_multi_valued_field_equals_a_value_it_contains(find):
    assert find({"tags": "red"}) == [1, 2]
    assert find({"watchers": 8}) == [1, 2]


def test_a_multi_valued_field_in_a_list_contains_any_of_it(find):
    assert find({"watchers": [7, 9]}) == [1]
    assert find({"tags": {"in": ["blue", "green"]}}) == [2]


def test_a_multi_valued_field_ne_a_value_contains_none_of_it(find):
    assert find({"tags": {"ne": "blue"}}) == [1, 3, 4, 5]
    assert find({"tags": {"not_in": ["red", "blue"]}}) == [3, 4, 5]


def test_a_multi_valued_field_is_empty_without_items(find):
    assert find({"tags": None}) == [3, 4, 5]
    assert find({"watchers": {"empty": False}}) == [1, 2]


def test_any_all_and_not_combine_filters(find):
    assert find({"any": [{"owner": "bob"}, {"status": "done"}]}) == [2, 3]
    assert find({"all": [{"owner": "alice"}, {"status": "done"}]}) == [3]
    assert find({"not": {"status": "open"}}) == [3, 4, 5]
    assert find({"any": [{"all": [{"status": "open"}, {"not": {"tags": "blue"}}]}, {"priority": "high"}]}) == [1, 3]
    assert find({"status": "open", "not": {"owner": "bob"}, "any": [{"size": {"gt": 5}}, {"flag": None}]}) == [1]


def test_an_empty_filter_matches_every_record_and_an_empty_any_none(find):
    assert find({}) == ALL
    assert find(None) == ALL
    assert find({"all": []}) == ALL
    assert find({"any": []}) == []
    assert find({"status": {"in": []}}) == []
    assert find({"status": {"not_in": []}}) == ALL


def test_id_is_a_field_of_every_type(find):
    assert find({"id": 3}) == [3]
    assert find({"id": [1, 5, 99, 2**40]}) == [1, 5]
    assert find({"id": {"gt": 3}}) == [4, 5]
    assert find({"id": {"lte": 2}, "status": "open"}) == [1, 2]
    assert find({"id": {"ne": 2}}) == [1, 3, 4, 5]
    assert find({"id": {"lt": -(2**40)}}) == []
    assert find({"id": None}) == []


# -- text ---------------------------------------------------------------------------------

def test_text_finds_words_whatever_their_case_and_accents(find):
    assert find({"text": "tiskarna"}) == [1]
    assert find({"text": "ECRAN"}) == [2]
    assert find({"text": "duro"}) == [4]
    assert find({"text": "Paříži"}) == [1]


def test_text_needs_every_word_in_any_of_the_indexed_fields(find):
    assert find({"text": "paris printer"}) == [3]
    assert find({"text": "printer ink"}) == [4]
    assert find({"text": "printer tiskarna"}) == []


def test_text_with_a_star_matches_words_starting_alike(find):
    assert find({"text": "print*"}) == [3, 4]
    assert find({"text": "pa*"}) == [1, 3]
    assert find({"text": "pa* ink"}) == []


def test_text_combines_with_other_conditions(find):
    assert find({"text": "print*", "status": "new"}) == [4]
    assert find({"not": {"text": "printer"}}) == [1, 2, 5]


def test_text_without_words_matches_every_record(find):
    assert find({"text": " * "}) == ALL


# -- references to the context -------------------------------------------------------------

def test_me_is_the_current_user(find):
    assert find({"owner": "$me"}, me={"id": "alice"}) == [1, 3]


def test_a_reference_giving_a_list_means_any_of_it(find):
    assert find({"owner": "$me.colleagues"}, me={"id": "x", "colleagues": ["alice", "bob"]}) == [1, 2, 3]
    assert find({"owner": {"not_in": "$me.colleagues"}}, me={"colleagues": ["alice"]}) == [2, 4, 5]


def test_a_missing_context_value_matches_no_record_not_the_empty_ones(find):
    assert find({"owner": "$me.acting_for"}, me={"id": "carol"}) == []
    assert find({"owner": "$me"}) == []
    assert find({"owner": {"ne": "$me.acting_for"}}, me={"id": "carol"}) == [1, 2, 3, 4, 5]
    assert find({"owner": None}) == [4, 5]   # empties are asked for with null


def test_a_range_with_a_missing_bound_matches_nothing(find):
    assert find({"size": {"gt": "$record.size"}}, record={}) == []


def test_record_names_a_field_of_the_record_being_edited(find):
    assert find({"team": "$record.team"}, record={"team": 2}) == [2]
    assert find({"watchers": "$record.watchers"}, record={"watchers": (7, 9)}) == [1]


def test_now_and_today_move_by_days_hours_and_minutes(find):
    now = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
    assert find({"start": {"gte": "$now-2d"}}, now=now) == [3]
    assert find({"start": {"gte": "$now - 1h"}}, now=now) == []
    assert find({"start": {"lt": "$now-120m"}}, now=now) == [1]
    assert find({"start": {"lte": "$now-120m"}}, now=now) == [1, 3]
    assert find({"due": {"lte": "$today+30d"}}, now=now, today=date(2026, 2, 1)) == [1]
    assert find({"due": {"lte": "$today+30d"}}, now=now) == []   # today defaults to the day of now
    assert find({"start": {"gte": "$today"}}, now=now) == [3]    # a day as a moment: its midnight


def test_now_defaults_to_the_current_moment(find):
    assert find({"start": {"lt": "$now"}}) == [1, 3]


def test_record_numbers_of_a_ref_field_are_looked_up_when_the_filter_runs(find):
    numbers = {"TEAM-2": 2}

    def lookup(type_name, text):
        assert type_name == "team"
        try:
            return numbers[text]
        except KeyError:
            raise FieldError(f"there is no team `{text}`") from None
    assert find({"team": "TEAM-2"}, lookup=lookup) == [2]
    with pytest.raises(QueryError, match="there is no team `TEAM-9`"):
        find({"team": ["TEAM-2", "TEAM-9"]}, lookup=lookup)
    with pytest.raises(QueryError, match="need a lookup"):
        find({"team": "TEAM-2"})


def test_a_context_value_the_field_refuses_is_reported_where_it_is_used(find):
    with pytest.raises(QueryError) as caught:
        find({"any": [{"size": "$me.height"}]}, me={"height": "tall"})
    assert caught.value.path == "any[0].size"
    assert "`$me.height` is `tall`" in caught.value.message and "not a whole number" in caught.value.message


def test_two_dollars_start_a_literal_text(item_type):
    compiled = compile_filter({"title": "$$5 off"}, item_type)
    assert compiled.root.operand.keys == {"$5 off"}


def test_record_defaults_to_the_filtered_type_and_may_name_another(item_type, item_type_with):
    compile_filter({"team": "$record.team"}, item_type)
    other = item_type_with(squad=StringKind())
    compiled = compile_filter({"team": "$record.squad"}, item_type, record_type=other)
    assert compiled.record_fields == {"squad"}


def test_fields_lists_every_field_the_filter_reads(item_type):
    compiled = compile_filter({"any": [{"status": "open"}, {"text": "x"}], "size": {"gt": "$record.size"},
                               "not": {"id": 3}}, item_type)
    assert compiled.fields == {"status", "title", "notes", "size", "id"}
    assert compiled.record_fields == {"size"}


# -- errors -------------------------------------------------------------------------------

def test_an_unknown_field_is_named_with_its_place_and_a_suggestion(item_type):
    error = refused({"any": [{"status": "open"}, {"prority": "high"}]}, item_type)
    assert error.path == "any[1].prority"
    assert error.message == "`prority` is not a field of `item`"
    assert error.hint == "did you mean `priority`?"
    assert str(error) == "any[1].prority: `prority` is not a field of `item`; did you mean `priority`?"


def test_an_unknown_operator_is_named_with_a_suggestion(item_type):
    error = refused({"priority": {"gte": "high", "lts": "low"}}, item_type)
    assert error.path == "priority.lts"
    assert "`lts` is not an operator" in error.message
    assert error.hint == "did you mean `lt`?"


def test_a_field_without_an_index_says_where_to_add_one(item_type):
    error = refused({"all": [{"remark": "x"}]}, item_type)
    assert (error.path, error.message) == ("all[0].remark", "field `remark` of `item` has no index")
    assert error.hint == "add it to `index:` of `item`"


def test_text_on_a_type_without_a_text_index_says_how_to_add_one(item_type_with):
    error = refused({"text": "paris"}, item_type_with(text=False))
    assert (error.path, error.message) == ("text", "`item` has no text index to search")
    assert error.hint == "add `{text: [fields]}` to `index:` of `item`"


def test_ranges_are_refused_on_multi_valued_and_unordered_fields(item_type):
    error = refused({"tags": {"gt": "a"}}, item_type)
    assert error.path == "tags.gt" and "holds several values" in error.message
    error = refused({"not": {"notes": {"lte": "a"}}}, item_type)
    assert error.path == "not.notes.lte" and "has no order" in error.message


@pytest.mark.parametrize("spec, path, words", [
    ({"status": {"in": "open"}}, "status.in", "expects a list of values"),
    ({"status": {"eq": ["open"]}}, "status.eq", "use `in` for a list"),
    ({"status": {"ne": ["open"]}}, "status.ne", "use `not_in` for a list"),
    ({"status": {"empty": "yes"}}, "status.empty", "`empty` is true or false"),
    ({"status": {}}, "status", "give an operator"),
    ({"size": {"gt": None}}, "size.gt", "use `empty: true`"),
    ({"size": {"gt": [1, 2]}}, "size.gt", "compares with one value"),
    ({"status": ["open", ["new"]]}, "status[1]", "cannot be a list or a map"),
    ({"any": {"status": "open"}}, "any", "expects a list of filters"),
    ({"not": [{"status": "open"}]}, "not", "expects one filter"),
    ({"text": ["paris"]}, "text", "expects words to search"),
    ({"all": [{"status": "open"}, "open"]}, "all[1]", "a filter is a map"),
])
def test_an_operand_of_the_wrong_shape_is_named_with_its_place(item_type, spec, path, words):
    error = refused(spec, item_type)
    assert error.path == path
    assert words in str(error)


def test_a_filter_that_is_not_a_map_is_refused(item_type):
    assert "a filter is a map" in refused(["status"], item_type).message


def test_a_value_the_field_refuses_carries_the_fields_reason(item_type):
    error = refused({"priority": {"gte": "hihg"}}, item_type)
    assert error.path == "priority.gte"
    assert "`hihg` is not one of urgent, high, medium, low; did you mean `high`?" in error.message
    error = refused({"status": {"in": ["open", "clsoed"]}}, item_type)
    assert error.path == "status.in[1]"
    assert refused({"size": "big"}, item_type).message == "`size` cannot be compared with `big`: `big` is not a whole number"


@pytest.mark.parametrize("spec, path, words, hint", [
    ({"owner": "$meh"}, "owner", "`$meh` is not a reference", "did you mean `$me`?"),
    ({"team": "$record.tema"}, "team", "`tema` is not a field of `item`", "did you mean `team`?"),
    ({"team": "$record"}, "team", "`$record` needs a field", None),
    ({"start": {"gt": "$today+4h"}}, "start.gt", "`$today` moves by whole days", "use `$now` for hours and minutes"),
    ({"owner": {"in": ["bob", "$me+1d"]}}, "owner.in[1]", "only `$now` and `$today` take an offset", None),
    ({"start": "$now.hour"}, "start", "`$now` has no attributes", None),
    ({"priority": "$now"}, "priority", "`$now` is a moment, which `priority` (enum) cannot hold", None),
    ({"owner": "$ me"}, "owner", "is not a reference", "write `$$` for a text that starts with `$`"),
])
def test_a_bad_reference_is_named_with_its_place(item_type, spec, path, words, hint):
    error = refused(spec, item_type)
    assert error.path == path
    assert words in error.message
    assert error.hint == hint
