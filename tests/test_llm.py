"""Model resolution and the generation guards, without loading a model."""

import hashlib

import pytest

from qa_bot.answer.llm import (
    PACKAGED_MODELS, ModelError, PackagedModel, check_gguf, is_looping, resolve_model_path, until_repetition,
)
from qa_bot.answer.messages import system_folded_into_user
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


def chunk_packages(folder, parts: list[bytes]) -> tuple[str, ...]:
    """Packages on sys.path, each holding one data/*.bin chunk, as the Qwen chunk packages do."""
    names = []
    for number, part in enumerate(parts, start=1):
        package = folder / f"chunkpkg_{folder.name}_{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(part)
        names.append(package.name)
    return tuple(names)


def test_a_chunked_model_is_joined_in_package_order_and_checked(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    parts = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    whole = b"".join(parts)
    packages = chunk_packages(tmp_path, parts)
    model = PackagedModel("t", "t.gguf", packages, hashlib.sha256(whole).hexdigest(), len(whole))
    assert model.materialize(tmp_path / "models" / "t.gguf").read_bytes() == whole
    changed = PackagedModel("t", "t.gguf", packages, hashlib.sha256(b"other").hexdigest(), len(whole))
    with pytest.raises(ModelError, match="SHA-256"):
        changed.materialize(tmp_path / "other" / "t.gguf")
    assert list((tmp_path / "other").iterdir()) == []  # nothing half-made is left behind


def test_a_missing_chunk_package_is_a_model_error(tmp_path):
    model = PackagedModel("t", "t.gguf", ("no_such_chunk_package_1",), "0" * 64, 1)
    with pytest.raises(ModelError, match="pip install no_such_chunk_package_1"):
        model.materialize(tmp_path / "t.gguf")


def test_fast_names_the_small_packaged_model(tmp_path):
    settings = Settings(model="fast", cache_dir=tmp_path)
    assert resolve_model_path(settings).name == PACKAGED_MODELS["gemma3-270m"].file_name
