"""The question analysed once: its parts, what each asks for, and the names it gives."""

import pytest

from qa_bot.answer.query import analyse, asking_part, names_in, parts_of


@pytest.mark.parametrize(
    "question, parts",
    [
        ("What is MGTAB?", [("What is MGTAB?", "explanation")]),
        (
            "How many expert-annotated users, and how many relationship types does MGTAB contain?",
            [("How many expert-annotated users", "number"), ("how many relationship types does MGTAB contain?", "number")],
        ),
        (
            "Is there a toolbox for neural operators? On which climate dataset was it validated?",
            [("Is there a toolbox for neural operators?", "yes_no"), ("On which climate dataset was it validated?", "entity")],
        ),
        ("这里有没有这样的模块?它在哪个全球气候数据集上做了验证?", [("这里有没有这样的模块?", "yes_no"), ("它在哪个全球气候数据集上做了验证?", "entity")]),
        # A piece too short to ask anything stays with the question after it.
        ("On average, how much faster is MGG than the DGCL framework?", [("On average how much faster is MGG than the DGCL framework?", "number")]),
    ],
)
def test_a_question_is_split_into_the_things_it_asks(question, parts):
    assert [(part.text, part.asks) for part in analyse(question).parts] == parts


def test_a_parts_topic_is_its_words_without_the_names_the_question_gives():
    query = analyse("How many users does MGTAB hold, and how many relationship types does it contain?")
    assert query.name_terms == {"mgtab"}
    assert [part.topic_terms for part in query.parts] == [
        {"mani", "user", "hold"}, {"mani", "relationship", "type", "contain"}]


def test_which_method_asks_for_the_papers_name_and_which_dataset_for_another():
    assert analyse("Which method enhances the query features twice?").asks == "name"
    assert analyse("Which benchmark was KoopmanLab validated on?").asks == "entity"


def test_a_question_that_mentions_the_authors_in_passing_does_not_ask_who_they_are():
    assert analyse("In that work, what do the authors treat as dissimilar pairs?").asks != "metadata"
    assert analyse("Who are the authors of the DFME paper?").metadata == "authors"


def test_a_compound_of_a_plain_word_and_a_name_names_only_the_name():
    assert names_in("How much faster is it than multi-GPU systems on GPUs with KonIQ-10k and GPT-4?") == (
        "GPU", "KonIQ-10k", "GPT-4",
    )


@pytest.mark.parametrize("question, asking", [
    ("We run a small lab with only two GPUs and little time, so how much faster is MGG than DGCL?",
     "how much faster is MGG than DGCL?"),  # the situation before the question, and its "so", left out
    ("My group studies bots on social media and we need labelled data. Which benchmark has expert-annotated users?",
     "Which benchmark has expert-annotated users?"),
    ("How much faster is MGG than DGCL?", "How much faster is MGG than DGCL?"),  # nothing before it
    ("MGG比DGCL快多少倍？", "MGG比DGCL快多少倍？"),
])
def test_the_asking_part_of_a_question(question, asking):
    assert asking_part(question) == asking


def test_a_question_that_asks_two_things_has_two_parts():
    assert parts_of("How many users, and how many relationship types does MGTAB contain?") == [
        "How many users", "how many relationship types does MGTAB contain?"]


@pytest.mark.parametrize("question, asking", [
    # A long Chinese question: from after the comma that starts the asking clause.
    ("我们实验室只有两块GPU，时间也不多，训练数据也很少，MGG比DGCL框架快多少倍？", "MGG比DGCL框架快多少倍？"),
    ("我们只有两块GPU和很少时间，MGG比DGCL框架快多少倍呢？", "MGG比DGCL框架快多少倍呢？"),  # 31 characters: cut
    ("我们只有两块GPU和很少时间，MGG比DGCL框架快多少倍？", "我们只有两块GPU和很少时间，MGG比DGCL框架快多少倍？"),  # 30: short, whole
    # A long Chinese question without a comma before its asking clause is kept whole.
    ("我们实验室只有两块GPU而且时间也不多所以想知道MGG比DGCL框架快多少倍呢请告诉我",
     "我们实验室只有两块GPU而且时间也不多所以想知道MGG比DGCL框架快多少倍呢请告诉我"),
    # 15 words are a short question, kept whole; 16 are cut after the situation.
    ("We run a small lab with GPUs, so how much faster is MGG than DGCL?",
     "We run a small lab with GPUs, so how much faster is MGG than DGCL?"),
    ("We run a small lab with our GPUs, so how much faster is MGG than DGCL?", "how much faster is MGG than DGCL?"),
    # A sentence of situation, then "So which ...": the "So" goes with the situation, whatever its case.
    ("We have two GPUs. So which method trains graph neural networks faster on several GPUs than DGCL?",
     "which method trains graph neural networks faster on several GPUs than DGCL?"),
    # A long question that starts by asking is its own asking part, its first word included.
    ("So which method trains graph neural networks faster on several GPUs than DGCL does on them?",
     "So which method trains graph neural networks faster on several GPUs than DGCL does on them?"),
    # A long request that asks no question in words is kept whole.
    ("Please summarise for me the main contribution of the paper on training graph neural networks across many GPUs in detail",
     "Please summarise for me the main contribution of the paper on training graph neural networks across many GPUs in detail"),
])
def test_the_asking_part_of_a_long_question(question, asking):
    assert asking_part(question) == asking


def test_a_short_last_piece_stays_with_the_part_before_it():
    assert parts_of("Which dataset does MGTAB build on? How many users does it have? Which relations does it hold? Why?") == [
        "Which dataset does MGTAB build on?", "How many users does it have?", "Which relations does it hold? Why?"]


def test_a_question_too_short_to_split_is_its_one_part():
    assert parts_of("Why?") == ["Why?"]
    assert [(part.text, part.asks) for part in analyse("Why?").parts] == [("Why?", "explanation")]


def test_a_chinese_part_of_six_characters_asks_on_its_own():
    assert parts_of("MGTAB包含多少个用户？有几种关系？") == ["MGTAB包含多少个用户？", "有几种关系？"]


def test_which_datasets_asks_for_a_list():
    assert analyse("Which datasets was KoopmanLab validated on?").asks == "list"
    assert analyse("KoopmanLab在哪些数据集上做了验证？").asks == "list"


def test_a_capitalised_word_inside_a_sentence_is_a_name_but_a_common_one_is_not():
    assert names_in("What does the Koopman operator learn?") == ("Koopman",)
    assert names_in("Which Transformer does MGTAB use with Monte Carlo sampling?") == ("MGTAB",)
