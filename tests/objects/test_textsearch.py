from deskbase.objects.textsearch import fold, words, words_of


def test_fold_ignores_case_and_accents():
    assert fold("Tiskárna ÉCRAN Ångström naïve") == "tiskarna ecran angstrom naive"


def test_fold_maps_letters_that_have_no_accent_to_strip():
    assert fold("Đuro Łódź Søren Æsir Œuvre Straße Þór ılık") == "duro lodz soren aesir oeuvre strasse thor ilik"


def test_fold_drops_every_combining_mark_and_keeps_other_characters_however_often_asked():
    marks = [chr(code) for code in range(0x300, 0x345)] + ["\u0483", "\u05b0", "\u064b", "\u20d0"]
    for _ in range(2):   # the second time from what the first remembered
        assert all(fold(f"Ra{mark}d") == "rad" for mark in marks)
        assert fold("Ǆemal Ćosić ﬁle ½ Ωmega Жук 東京") == "dzemal cosic file 1⁄2 ωmega жук 東京"


def test_fold_keeps_ascii_text_as_lower_case():
    assert fold("Printer PARIS 42") == "printer paris 42"


def test_words_split_on_punctuation_and_keep_digits():
    assert words("L'écran n°5, model_X-200 (12,50 €)") == ["l", "ecran", "n", "5", "model", "x", "200", "12", "50"]


def test_words_find_folded_forms_of_each_other():
    assert words("tiskarna") == words("Tiskárna")
    assert words("ecran") == words("écran")
    assert words("duro") == words("Đuro")


def test_words_of_reads_text_and_the_items_of_tags_and_ignores_other_values():
    values = {"title": "Printer in Paris", "tags": ("Été", "urgent"), "size": 12, "notes": None}
    assert words_of(values, ["title", "tags", "size", "notes", "missing"]) == {
        "printer", "in", "paris", "ete", "urgent"}
