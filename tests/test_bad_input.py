"""Bad input at the planning level: each case refused or warned by name, exit code set, no traceback.

One case per kind (issue 18, item 5); header values of the wrong type are in test_header_index.py.
"""
from __future__ import annotations

import pytest

from muse_operators.cli import main
from muse_operators.synthetic.raw_frames import write_bias_set


@pytest.fixture
def raw(tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    write_bias_set(raw_dir, [1], count=3, seed=2)
    return raw_dir


def _plan(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_empty_raw_argument_is_refused_not_the_working_directory_scanned(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _plan(capsys, "", str(tmp_path / "out"))
    assert code == 2 and out == ""
    assert "RAWDIR is empty" in err


def test_output_inside_the_raw_directory_is_refused(capsys, raw):
    code, out, err = _plan(capsys, str(raw), str(raw / "reduced"))
    assert code == 2 and out == ""
    assert f"OUTDIR {raw / 'reduced'} is inside RAWDIR {raw}" in err


def test_output_that_is_an_existing_file_is_refused(capsys, raw, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("not a directory")
    code, _, err = _plan(capsys, str(raw), str(existing))
    assert code == 2 and f"OUTDIR {existing} exists and is not a directory" in err


def test_a_missing_raw_directory_is_named(capsys, tmp_path):
    code, _, err = _plan(capsys, str(tmp_path / "nowhere"), str(tmp_path / "out"))
    assert code == 2 and f"RAWDIR {tmp_path / 'nowhere'} does not exist" in err


def test_an_empty_raw_directory_is_a_plan_error_not_success(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = _plan(capsys, str(empty), str(tmp_path / "out"))
    assert code == 1
    assert f"ERROR: no raw MUSE files (*.fits, *.fits.fz, *.fits.gz) under {empty}" in out


def test_a_good_pool_still_plans(capsys, raw, tmp_path):
    code, out, err = _plan(capsys, str(raw), str(tmp_path / "out"), "--config", _own(tmp_path))
    assert code == 0 and err == "" and "[bias] 1 step(s)" in out


def _own(tmp_path):
    path = tmp_path / "own.json"
    path.write_text('{"global": {"using_ESO_Calibration": false}}')
    return str(path)
