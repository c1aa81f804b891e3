"""The real MUSE recipes reduce the synthetic calibrations, and recover what was put into them.

For IFU 1: muse_bias → muse_flat → muse_wavecal → muse_lsf in the esorex image with ``--nifu=1``,
through :mod:`tests.recipe_runner` (the project's own call building, mounts and product handling,
without Airflow). Each recipe runs once per test session, even when ``pytest -n 2`` spreads these
tests over two workers. What a user relies on is checked against the synthetic truth: the traced
slices are where :mod:`~muse_operators.synthetic.slices` put them, the wavelength solution is
:func:`~muse_operators.synthetic.lamps.wavelength`, the master flat carries the CCD's pixel response,
and the LSF has the width of the simulated lines.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from muse_operators.synthetic import lamps
from muse_operators.synthetic.calibration_frames import write_arc_set, write_flat_set, write_static_calibrations
from muse_operators.synthetic.raw_frames import write_bias_set
from muse_operators.synthetic.slices import N_SLICES, pixel_response, slice_geometry

from .recipe_runner import RecipeRun, once, run_recipe, session_directory

pytestmark = pytest.mark.container

IFU = 1
BIAS_SEED = 31  # the flats and arcs carry this bias set's fixed pattern, as frames of one CCD do
TRACE_TOLERANCE_PX = 0.1  # measured ~0.01 px; tight enough that a half-pixel convention slip fails
WAVE_TOLERANCE_A = 0.05
ROWS = np.arange(20.0, 4100.0, 40.0)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the xdist workers, so that data and recipe runs below happen once per session."""
    return session_directory(tmp_path_factory, "synthetic_calibrations")


@pytest.fixture(scope="module")
def raw(workdir: Path) -> dict[str, list[Path]]:
    """Raw biases, flats and arcs plus the static tables; directories readable by the recipes' user."""

    def generate() -> dict[str, list[str]]:
        sets = {
            "bias": write_bias_set(workdir / "bias", [IFU], count=3, seed=BIAS_SEED),
            "flat": write_flat_set(workdir / "flat", [IFU], count=3, seed=32, bias_seed=BIAS_SEED),
            "arc": write_arc_set(workdir / "arc", [IFU], per_lamp=3, seed=33, bias_seed=BIAS_SEED),
            "static": list(write_static_calibrations(workdir / "static", [IFU]).values()),
        }
        for name in sets:
            (workdir / name).chmod(0o755)  # the recipes run as uid 10001
        return {name: [str(path) for path in paths] for name, paths in sets.items()}

    return {name: [Path(p) for p in paths] for name, paths in once(workdir, "raw", generate).items()}


def _static(raw: dict[str, list[Path]], category: str) -> Path:
    return next(p for p in raw["static"] if fits.getval(p, "HIERARCH ESO PRO CATG") == category)


def _run_once(workdir: Path, image: str, recipe: str, sof: list[tuple[Path, str]], expected: list[str]) -> RecipeRun:
    def run() -> dict:
        return run_recipe(image, recipe, sof, workdir / f"out_{recipe}", {"nifu": IFU}, expected=expected).to_json()

    return RecipeRun.from_json(once(workdir, recipe, run))


@pytest.fixture(scope="module")
def bias_run(raw, esorex_image, workdir) -> RecipeRun:
    return _run_once(workdir, esorex_image, "muse_bias", [(p, "BIAS") for p in raw["bias"]], ["MASTER_BIAS"])


@pytest.fixture(scope="module")
def flat_run(raw, bias_run, esorex_image, workdir) -> RecipeRun:
    sof = [(p, "FLAT") for p in raw["flat"]] + [(bias_run.product("MASTER_BIAS"), "MASTER_BIAS")]
    return _run_once(workdir, esorex_image, "muse_flat", sof, ["MASTER_FLAT", "TRACE_TABLE"])


def _arc_sof(raw, bias_run: RecipeRun, flat_run: RecipeRun) -> list[tuple[Path, str]]:
    return [(p, "ARC") for p in raw["arc"]] + [
        (bias_run.product("MASTER_BIAS"), "MASTER_BIAS"),
        (flat_run.product("TRACE_TABLE"), "TRACE_TABLE"),
        (_static(raw, "LINE_CATALOG"), "LINE_CATALOG"),
    ]


@pytest.fixture(scope="module")
def wavecal_run(raw, bias_run, flat_run, esorex_image, workdir) -> RecipeRun:
    return _run_once(workdir, esorex_image, "muse_wavecal", _arc_sof(raw, bias_run, flat_run), ["WAVECAL_TABLE"])


@pytest.fixture(scope="module")
def lsf_run(raw, bias_run, flat_run, wavecal_run, esorex_image, workdir) -> RecipeRun:
    sof = _arc_sof(raw, bias_run, flat_run) + [(wavecal_run.product("WAVECAL_TABLE"), "WAVECAL_TABLE")]
    return _run_once(workdir, esorex_image, "muse_lsf", sof, ["LSF_PROFILE"])


def _poly(row: fits.FITS_rec, prefix: str, y: np.ndarray) -> np.ndarray:
    """A TRACE_TABLE polynomial in the 1-based CCD row (coefficients ``<prefix>_00`` .. ``_05``)."""
    return sum(row[f"{prefix}_{i:02d}"] * y**i for i in range(6))


def test_muse_flat_traces_48_slices_where_the_geometry_put_them(flat_run):
    geometry = slice_geometry(IFU)
    assert "Found 48 slices" in flat_run.log.read_text()
    with fits.open(flat_run.product("TRACE_TABLE")) as hdul:
        table = hdul[1].data
        median_width = hdul[0].header["HIERARCH ESO QC TRACE WIDTHS MEDIAN"]
        assert list(table["SliceNo"]) == list(range(1, N_SLICES + 1))
        left, right = geometry.edges(ROWS)  # (rows, 48)
        for k, row in enumerate(table):
            assert np.abs(_poly(row, "tc0", ROWS) - 0.5 * (left[:, k] + right[:, k])).max() < TRACE_TOLERANCE_PX
            assert np.abs(_poly(row, "tc1", ROWS) - left[:, k]).max() < 2 * TRACE_TOLERANCE_PX
            assert np.abs(_poly(row, "tc2", ROWS) - right[:, k]).max() < 2 * TRACE_TOLERANCE_PX
        assert np.abs(table["Width"] - geometry.width).max() < 2 * TRACE_TOLERANCE_PX
    assert median_width == pytest.approx(float(np.median(geometry.width)), abs=0.2)


def test_master_flat_carries_the_pixel_response_of_the_ccd(flat_run):
    """Inside a slice, the master flat's pixel-to-pixel structure is the CCD's simulated response."""
    flat = fits.getdata(flat_run.product("MASTER_FLAT"), "DATA").astype(np.float64)
    response = pixel_response(IFU).astype(np.float64)
    geometry = slice_geometry(IFU)
    for slice_no in (5, 24, 44):
        centre = int(round(float(geometry.centres(2050.0)[slice_no - 1]))) - 1
        block = np.s_[1999:2100, centre - 25:centre + 25]

        def structure(image: np.ndarray, block: tuple = block) -> np.ndarray:  # remove the smooth row and column trends
            part = image[block] / image[block].mean(axis=1, keepdims=True)
            return (part - part.mean(axis=0, keepdims=True)).ravel()

        assert np.corrcoef(structure(flat), structure(response))[0, 1] > 0.85


def test_muse_wavecal_recovers_the_wavelength_solution(wavecal_run):
    geometry = slice_geometry(IFU)
    with fits.open(wavecal_run.product("WAVECAL_TABLE")) as hdul:
        header, table = hdul[0].header, hdul[1].data
    assert list(table["SliceNo"]) == list(range(1, N_SLICES + 1))
    truth = lamps.wavelength(ROWS)
    x = geometry.centres(ROWS)  # (rows, 48): evaluate each slice's λ(x, y) along its centre
    for k, row in enumerate(table):
        solution = sum(row[f"wlc{i}{j}"] * x[:, k] ** i * ROWS**j for i in range(3) for j in range(7))
        assert np.abs(solution - truth).max() < WAVE_TOLERANCE_A, f"slice {k + 1}"
        qc = f"HIERARCH ESO QC WAVECAL SLICE{k + 1} "
        assert header[qc + "WLEN"] == pytest.approx(float(lamps.wavelength(header[qc + "WLPOS"])), abs=WAVE_TOLERANCE_A)
        assert header[qc + "FIT RMS"] < 0.02
        assert header[qc + "LINES NDET"] == len(lamps.ARC_LINES)
        assert header[qc + "LINES NID"] >= 0.9 * len(lamps.ARC_LINES)
        assert abs(header[qc + "DWLEN BOTTOM"]) < 0.1 and abs(header[qc + "DWLEN TOP"]) < 0.1  # λ has no x term
        assert header[qc + "LINES FWHM MEAN"] == pytest.approx(lamps.observed_line_fwhm(7000.0), rel=0.03)


def test_muse_lsf_measures_the_width_of_the_simulated_lines(lsf_run):
    with fits.open(lsf_run.product("LSF_PROFILE")) as hdul:
        header = hdul[0].header
        assert hdul["LSF_PROFILE"].data.shape[0] == N_SLICES
        assert np.all(np.isfinite(hdul["LSF_PROFILE"].data))
    expected = lamps.observed_line_fwhm(7000.0)
    for slice_no in range(1, N_SLICES + 1):
        assert header[f"HIERARCH ESO QC LSF SLICE{slice_no} FWHM MEAN"] == pytest.approx(expected, rel=0.03)
