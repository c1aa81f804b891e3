"""The modified sky steps on tables in muse_create_sky's product format, through the Python-step runner."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from muse_operators import python_steps


def _product(path, catg: str, table: Table, extname: str):
    primary = fits.PrimaryHDU(header=fits.Header({"INSTRUME": "MUSE", "HIERARCH ESO PRO CATG": catg}))
    hdu = fits.table_to_hdu(table)
    hdu.header["EXTNAME"] = extname
    fits.HDUList([primary, hdu]).writeto(path)
    return path


def test_zeroed_continuum_and_molecular_lines_are_published_by_pro_catg(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    continuum = _product(src / "SKY_CONTINUUM.fits", "SKY_CONTINUUM",
                         Table({"lambda": np.linspace(4750, 9350, 50), "flux": np.full(50, 3.5)}), "CONTINUUM")
    lines = _product(src / "SKY_LINES.fits", "SKY_LINES",
                     Table({"name": ["OI5577", "OH7-3P1e2.5", "O2_b", "NaI5890", "OI6300"],
                            "group": [0, 1, 2, 3, 0], "lambda": [5577.3, 6300.0, 8650.0, 5890.0, 6300.3],
                            "flux": [25000.0, 500.0, 800.0, 300.0, 5000.0], "dq": [0] * 5}), "LINES")
    zeroed = python_steps.run("python:zero_sky_continuum", [[str(continuum), "SKY_CONTINUUM"]],
                              str(tmp_path / "zero"), ["SKY_CONTINUUM"])
    data = fits.getdata(zeroed["SKY_CONTINUUM"][0], 1)
    assert np.all(data["flux"] == 0) and np.allclose(data["lambda"], np.linspace(4750, 9350, 50))
    kept = python_steps.run("python:keep_molecular_sky_lines", [[str(lines), "SKY_LINES"]], str(tmp_path / "lines"),
                            ["SKY_LINES"])
    with fits.open(kept["SKY_LINES"][0]) as hdul:
        assert list(hdul["LINES"].data["name"]) == ["OH7-3P1e2.5", "O2_b"]
        assert hdul[0].header["HIERARCH ESO PRO CATG"] == "SKY_LINES"
    assert fits.getdata(continuum, 1)["flux"][0] == 3.5, "the input is never modified"
    assert not list(tmp_path.glob(".*staging*"))


def test_a_bad_input_fails_and_publishes_nothing(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    atomic_only = _product(src / "SKY_LINES.fits", "SKY_LINES",
                           Table({"name": ["OI5577"], "group": [0], "lambda": [5577.3], "flux": [1.0], "dq": [0]}),
                           "LINES")
    with pytest.raises(ValueError, match="no OH or O2 line"):
        python_steps.run("python:keep_molecular_sky_lines", [[str(atomic_only), "SKY_LINES"]], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert len(list(tmp_path.glob(".out.failed-*"))) == 1
