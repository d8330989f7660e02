"""The chat-template path of the in-process model, with the real packaged SmolLM2 135M Instruct
(its GGUF carries a chat template): what `--model smollm2` and every instruct GGUF run."""

import pytest

from qa_bot.answer.assistant import Assistant
from qa_bot.answer.llm import load_model, open_model
from qa_bot.settings import Settings
from tests.conftest import SEEDS

# The real model, browser or served processes: left out of `make check-latest`'s fast run.
pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "Repeat this sentence: MGTAB contains 10,199 expert-annotated users."},
]


@pytest.fixture(scope="module")
def smollm2():
    model = open_model(Settings(model="smollm2", n_ctx=2048))
    assert model.has_chat_template
    yield model
    # Freed here, not at interpreter exit, where llama-cpp-python's finaliser fails noisily.
    model._llama.close()
    load_model.cache_clear()


def test_an_instruct_model_writes_through_its_chat_template(smollm2):
    text = "".join(smollm2.stream(MESSAGES, 40))
    assert "10,199" in text


def test_a_template_that_refuses_a_system_turn_gets_it_folded_into_the_user_turn(smollm2, monkeypatch):
    real = smollm2._llama.create_chat_completion
    seen = []

    def no_system_turn(messages, **options):
        seen.append([message["role"] for message in messages])
        if any(message["role"] == "system" for message in messages):
            raise RuntimeError("System role not supported")  # as Mistral's template does
        return real(messages, **options)

    monkeypatch.setattr(smollm2._llama, "create_chat_completion", no_system_turn)
    text = "".join(smollm2.stream(MESSAGES, 40))
    assert seen == [["system", "user"], ["user"]]
    assert len(text.split()) >= 3  # the model wrote, from the folded prompt


def test_the_pipeline_writes_and_judges_through_the_instruct_models_template(smollm2, seeds_retriever):
    settings = Settings(corpus=SEEDS, model="smollm2")
    answer = Assistant(seeds_retriever, smollm2, settings).answer("What NDS does CMT obtain on nuScenes?")
    # The model wrote the number through its template; shown is its sentence if it judged it stated
    # (the 135M model rarely does: README, Which model), else the evidence quoted.
    assert not smollm2.follows_instructions  # too small to judge coverage: the word rules decide it
    assert "73.0" in answer.generated and "73.0%" in answer.text, answer
    judged = smollm2.yes_probability([{"role": "system", "content": "Reply yes or no."},
                                      {"role": "user", "content": "Is 73.0 a number?"}])
    assert 0.0 < judged < 1.0
