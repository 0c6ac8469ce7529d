"""Params as a workload reads them: /content/params.json first, PARAM_* env beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from substratus_workload import contract


def test_file_wins_over_env_and_keeps_ints(tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text(json.dumps({"weight": 3, "url": "http://x/a.txt"}))
    params = contract.load_params(tmp_path, {"PARAM_WEIGHT": "9", "PARAM_NAME": "base", "HOME": "/"})
    assert params == {"weight": 3, "url": "http://x/a.txt", "name": "base"}


def test_env_alone_works(tmp_path: Path) -> None:
    assert contract.load_params(tmp_path, {"PARAM_GIT_URL": "git://h/r"}) == {"git_url": "git://h/r"}


@pytest.mark.parametrize("body", ["[1]", '{"a": [1]}', '{"a": true}'])
def test_malformed_params_files_are_refused(tmp_path: Path, body: str) -> None:
    (tmp_path / "params.json").write_text(body)
    with pytest.raises(contract.ParamError):
        contract.load_params(tmp_path, {})


def test_int_params_are_checked() -> None:
    assert contract.param_int({"n": "4"}, "n", 1) == 4
    assert contract.param_int({}, "n", 7) == 7
    with pytest.raises(contract.ParamError, match="'n' must be an integer"):
        contract.param_int({"n": "four"}, "n", 1)
    with pytest.raises(contract.ParamError, match="at least 1"):
        contract.param_int({"n": 0}, "n", 1, minimum=1)


def test_fail_logs_the_message_as_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert contract.fail("it broke", 5) == 5
    assert capsys.readouterr().err.splitlines()[-1] == "error: it broke"
