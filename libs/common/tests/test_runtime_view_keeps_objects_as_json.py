"""The view keeps objects as JSON bytes (runtime.compact): what is read back is what was stored,
each read is a new dict, and which version is newer is told without decoding (no stack)."""

from __future__ import annotations

from substratus_common.runtime import compact


def _model(rv: str) -> dict[str, object]:
    return {"kind": "Model", "metadata": {"name": "m", "uid": "u1", "resourceVersion": rv}, "spec": {"image": "i"}}


def test_a_read_is_what_was_stored_and_a_new_dict_each_time() -> None:
    objects: compact.Objects[str] = compact.Objects()
    objects["m"] = _model("7")
    first = objects["m"]
    assert first == _model("7")
    first["spec"] = {"image": "changed by a caller"}
    assert objects["m"] == _model("7")  # the caller's change is its own
    entry = objects.entry("m")
    assert entry is not None
    assert (entry.uid, entry.version) == ("u1", "7")
    assert list(objects) == ["m"]
    del objects["m"]
    assert "m" not in objects
    assert objects.get("m") is None
