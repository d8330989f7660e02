"""Model resolution and the generation guards, without loading a model."""

import pytest

from qa_bot.llm import ModelError, check_gguf, is_looping, resolve_model_path, system_folded_into_user, until_repetition
from qa_bot.settings import Settings


def test_a_named_model_file_that_does_not_exist_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model_path(Settings(model=str(tmp_path / "missing.gguf"), models_dir=tmp_path))


def test_the_first_gguf_in_the_models_folder_is_used(tmp_path):
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    assert resolve_model_path(Settings(models_dir=tmp_path)) == tmp_path / "a.gguf"


def test_a_file_that_is_not_gguf_is_refused_before_llama_cpp_sees_it(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        check_gguf(path)


def test_a_packaged_model_is_placed_in_an_empty_models_folder(tmp_path):
    path = resolve_model_path(Settings(models_dir=tmp_path / "models", default_model="smollm2"))
    assert path.parent == tmp_path / "models" and path.read_bytes()[:4] == b"GGUF"
    assert [p.name for p in (tmp_path / "models").iterdir()] == [path.name]  # no partial files left


def test_looping_text_is_detected_and_stops_the_stream():
    assert is_looping("1." * 40)
    assert not is_looping("MGTAB contains 10,199 expert-annotated users and 7 types of relationships.")
    pieces = (piece for piece in ["a b "] * 1000)
    assert len("".join(until_repetition(pieces))) < 100


def test_a_template_without_a_system_turn_gets_the_system_text_in_the_user_turn():
    folded = system_folded_into_user([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}])
    assert folded == [{"role": "user", "content": "Be brief.\n\nQ?"}]
