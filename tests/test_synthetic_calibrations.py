"""Synthetic calibration frames and static tables: what the real recipes rely on, checked without Docker.

The recipes themselves run in ``test_synthetic_recipes.py``; here are the properties that make them
succeed (slice widths inside the tracing window, λ increasing with y at ~1.25 Å/px, a VERSION 3 line
catalog, lamp keywords, case-sensitive filter names) and that make a set an ESO template (names,
DPR, TPL keywords), plus determinism per seed.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from muse_operators.classify import classify
from muse_operators.headers import RawFrame, read_frame
from muse_operators.synthetic import lamps
from muse_operators.synthetic.calibration_frames import (arc_specs, flat_lamp_spectrum, flat_specs, skyflat_specs,
                                                         twilight_spectrum, write_arc_set, write_flat_set,
                                                         write_skyflat_set, write_static_calibrations)
from muse_operators.synthetic.detector import PORT_POSITIONS, ReadoutModel, overscan_levels, quadrant_regions, trim
from muse_operators.synthetic.headers import primary_header
from muse_operators.synthetic.slices import (FIRST_EDGE_LIMIT, N_SLICES, STRAY_LEVEL, TRACE_WIDTH_WINDOW,
                                             slice_geometry)
from muse_operators.synthetic.static_tables import FILTERS, SLICE_SKY

ROWS = np.arange(1, 4113, dtype=np.float64)
LAMP_OF_ION = {"Hg": "HgCd", "Cd": "HgCd", "Ne": "Ne", "Xe": "Xe"}  # muse_wavecalib.c: lamp from the ion name


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """One small set of each kind for IFU 1: 3 flats, 3 arcs (one per lamp), 1 sky flat."""
    base = tmp_path_factory.mktemp("calib")
    return {
        "flat": write_flat_set(base / "flat", [1], count=3, seed=5),
        "arc": write_arc_set(base / "arc", [1], per_lamp=1, seed=6),
        "skyflat": write_skyflat_set(base / "skyflat", [1], count=1, seed=7),
    }


def _electrons(path: Path, ifu: int = 1) -> np.ndarray:
    """Trimmed, overscan-subtracted data of one CHANnn extension, in electrons."""
    raw = fits.getdata(path, f"CHAN{ifu:02d}").astype(np.float64)
    image, levels = trim(raw), overscan_levels(raw)
    for port in PORT_POSITIONS:
        image[quadrant_regions(port)[2]] -= levels[port]
        image[quadrant_regions(port)[2]] *= ReadoutModel().gain[port - 1]
    return image


def _slice_column(ifu: int, slice_no: int, row: float) -> int:
    """0-based array column at the centre of a slice."""
    return int(round(float(slice_geometry(ifu).centres(row)[slice_no - 1]))) - 1


# --- slice geometry -------------------------------------------------------------------------------

@pytest.mark.parametrize("ifu", range(1, 25))
def test_slices_lie_where_the_tracing_looks_for_them(ifu):
    geometry = slice_geometry(ifu)
    low, high = TRACE_WIDTH_WINDOW
    assert geometry.left.shape == geometry.width.shape == (N_SLICES,)
    assert np.all((geometry.width > low + 3) & (geometry.width < high - 3))
    for row in (1.0, 4112.0):
        left, right = geometry.edges(row)
        assert 1.0 < left[0] < FIRST_EDGE_LIMIT
        assert right[-1] < 4096.0
        assert np.all(left[1:] - right[:-1] > 4.0)  # dark gaps between slices
        assert np.all(np.diff(geometry.centres(row)) > low)
    assert 0 < geometry.tilt * 4112 <= 3.0


def test_ifus_differ_but_each_is_fixed():
    assert slice_geometry(3) is slice_geometry(3)
    assert not np.allclose(slice_geometry(1).left, slice_geometry(2).left)
    with pytest.raises(ValueError, match="1..24"):
        slice_geometry(25)


def test_illumination_is_centred_on_the_geometry_and_conserves_width():
    geometry = slice_geometry(1)
    image = geometry.illumination()
    x = np.arange(1, 4097, dtype=np.float64)
    for row in (1, 2056, 4112):  # the tilt moves the slices between bottom and top
        line = image[row - 1].astype(np.float64)
        left, right = geometry.edges(float(row))
        for k in (0, 17, 47):
            window = (x > left[k] - 3) & (x < right[k] + 3)
            signal = (line[window] - STRAY_LEVEL) / (1 - STRAY_LEVEL)
            assert (signal * x[window]).sum() / signal.sum() == pytest.approx(0.5 * (left[k] + right[k]), abs=0.01)
            assert signal.sum() == pytest.approx(right[k] - left[k], abs=0.02)
        gap = int(round(0.5 * (right[5] + left[6]))) - 1
        assert STRAY_LEVEL <= line[gap] < 2 * STRAY_LEVEL  # scattered light plus the edges' faint wings


def test_locate_finds_the_slice_and_offset_of_a_pixel():
    geometry = slice_geometry(4)
    centres = geometry.centres(300.0)
    beyond = 0.5 * geometry.width[9] + 2.0  # 2 px past slice 10's right edge, inside the >= 4.7 px gap
    number, offset = geometry.locate(np.array([centres[9] + 10.0, centres[9] + beyond]), np.array([300.0, 300.0]))
    assert number[0] == 10 and offset[0] == pytest.approx(10.0)
    assert number[1] == 0 and np.isnan(offset[1])  # in the gap after slice 10


# --- lamps and the wavelength solution ------------------------------------------------------------

def test_wavelength_increases_with_y_at_the_dispersion_the_matching_allows():
    step = lamps.dispersion(ROWS)
    assert np.all((step > 1.19) & (step < 1.31))
    assert np.all(np.diff(lamps.wavelength(ROWS)) > 0)
    assert np.allclose(lamps.row_of(lamps.wavelength(ROWS)), ROWS, atol=1e-9)
    waves = [line.wavelength for line in lamps.ARC_LINES]
    assert lamps.wavelength(1.0) < min(waves) and max(waves) < lamps.wavelength(4112.0)


@pytest.mark.parametrize("lamp", ["HgCd", "Ne", "Xe"])
def test_arc_spectrum_puts_each_line_at_its_row_with_its_flux(lamp):
    spectrum = lamps.arc_spectrum(lamp) - lamps.ARC_CONTINUUM
    lines = lamps.lamp_lines(lamp)
    assert spectrum.sum() == pytest.approx(sum(line.flux for line in lines), rel=1e-6)
    for line in lines:
        centre = float(lamps.row_of(line.wavelength))
        window = np.abs(ROWS - centre) < 6
        assert (spectrum[window] * ROWS[window]).sum() / spectrum[window].sum() == pytest.approx(centre, abs=0.01)


def test_line_catalog_has_the_format_muse_wavecal_requires(tmp_path):
    path = lamps.write_line_catalog(tmp_path / "line_catalog.fits")
    with fits.open(path) as hdul:
        primary, table = hdul[0].header, hdul[1].data
        assert primary["VERSION"] == 3
        assert (primary["INSTRUME"], primary["HIERARCH ESO PRO CATG"]) == ("MUSE", "LINE_CATALOG")
        assert table.columns.names[:4] == ["lambda", "flux", "ion", "quality"]
        assert hdul[1].columns["lambda"].unit == "Angstrom"
        waves = np.asarray(table["lambda"], dtype=np.float64)
    assert np.all(np.diff(waves) > 1.5)  # sorted; the pipeline drops lines closer than 1.5 Å
    assert len(waves) == len(lamps.ARC_LINES) >= 60
    quality = list(table["quality"])
    assert set(quality) <= {3, 5} and quality.count(5) >= 10
    for ion, flux, line in zip(table["ion"], table["flux"], lamps.ARC_LINES, strict=True):
        assert LAMP_OF_ION[ion[:2]] == line.lamp
        assert flux == pytest.approx(line.flux, rel=1e-6)  # the scale of what the arcs show
    reference = [line for line in lamps.ARC_LINES if line.quality == 5]
    assert {line.lamp for line in reference} == {"HgCd", "Ne", "Xe"}


def test_lamp_keywords_light_exactly_the_requested_lamps():
    keywords = lamps.lamp_keywords([4])
    assert keywords["ESO INS LAMPNUM"] == 6
    lit = [n for n in range(1, 7) if keywords[f"ESO INS LAMP{n} ST"] and keywords[f"ESO INS SHUT{n} ST"]]
    assert lit == [4] and keywords["ESO INS LAMP4 NAME"] == "CU-LAMP4"
    with pytest.raises(ValueError, match="CU-LAMP1..6"):
        lamps.lamp_keywords([7])


# --- frame sets -------------------------------------------------------------------------------------

def test_templates_have_the_keywords_eso_groups_them_by():
    arcs = arc_specs()
    assert len(arcs) == 9 and [lamp for lamp, _ in arcs].count("Ne") == 3  # OCA: >= 9 arcs per template
    for specs, count, tag in ((flat_specs(), 3, "FLAT"), ([spec for _, spec in arcs], 9, "ARC"),
                              (skyflat_specs(), 3, "SKYFLAT")):
        assert {classify(RawFrame.from_header("/x.fits", primary_header(spec))).tag for spec in specs} == {tag}
        assert len({spec.tpl_start for spec in specs}) == 1
        assert specs[0].tpl_start == specs[0].date_obs[:19]
        assert [spec.tpl_expno for spec in specs] == list(range(1, count + 1))
        assert all(spec.tpl_nexp == count and spec.exptime > 0 for spec in specs)
        assert len({spec.archive_name for spec in specs}) == count
        assert all(a.mjd_obs + a.exptime / 86400 < b.mjd_obs for a, b in itertools.pairwise(specs))


@pytest.mark.parametrize(("kind", "dpr_type"), [("flat", "FLAT,LAMP"), ("arc", "WAVE"), ("skyflat", "FLAT,SKY")])
def test_written_frames_carry_archive_names_and_template_keywords(frames, kind, dpr_type):
    for path in frames[kind]:
        header = fits.getheader(path)
        assert path.name == header["ARCFILE"] == f"MUSE.{header['DATE-OBS'][:23]}.fits"
        assert (header["HIERARCH ESO DPR CATG"], header["HIERARCH ESO DPR TYPE"]) == ("CALIB", dpr_type)
        assert header["EXPTIME"] > 0
        assert header["HIERARCH ESO TPL NEXP"] == len(frames[kind])
        assert header["HIERARCH ESO DPR TECH"] == "IFU" and header["INSTRUME"] == "MUSE"
    starts = {fits.getval(path, "HIERARCH ESO TPL START") for path in frames[kind]}
    assert len(starts) == 1


def test_flat_frames_show_the_lamp_spectrum_inside_slices_only(frames):
    image = _electrons(frames["flat"][0])
    expected = flat_lamp_spectrum(ROWS)
    for row in (300, 2056, 3900):
        column = _slice_column(1, 30, row)
        measured = np.median(image[row - 3:row + 3, column - 10:column + 10])
        assert measured == pytest.approx(expected[row - 1], rel=0.03)
        left, right = slice_geometry(1).edges(float(row))
        gap = int(round(0.5 * (right[29] + left[30])))  # between slices 30 and 31
        assert np.median(image[row - 3:row + 3, gap - 1]) < 0.02 * expected[row - 1]
    lit = [n for n in range(1, 7) if fits.getval(frames["flat"][0], f"HIERARCH ESO INS LAMP{n} ST")]
    assert lit == [1, 2]


def test_each_arc_frame_shows_the_lines_of_its_lamp_and_no_other(frames):
    number_to_lamp = {number: lamp for lamp, number in lamps.ARC_LAMPS.items()}
    for path in frames["arc"]:
        header = fits.getheader(path)
        on = [n for n in range(1, 7)
              if header[f"HIERARCH ESO INS LAMP{n} ST"] and header[f"HIERARCH ESO INS SHUT{n} ST"]]
        assert len(on) == 1 and header[f"HIERARCH ESO INS LAMP{on[0]} NAME"] == f"CU-LAMP{on[0]}"
        lamp = number_to_lamp[on[0]]
        image = _electrons(path)
        column = image[:, _slice_column(1, 12, 2056.5) - 2:_slice_column(1, 12, 2056.5) + 3].mean(axis=1)
        for line in lamps.ARC_LINES:
            level = column[int(round(float(lamps.row_of(line.wavelength)))) - 1]  # the row nearest the line
            if line.lamp == lamp:
                assert level > 0.25 * line.flux, (lamp, line)
            else:
                assert level < 30, (lamp, line)  # continuum and noise only (nearest other line: 4.2 rows)


def test_sky_flat_follows_the_twilight_spectrum(frames):
    image = _electrons(frames["skyflat"][0])
    column = _slice_column(1, 40, 2056.5)
    ratio = [np.median(image[row - 5:row + 5, column - 10:column + 10]) / twilight_spectrum(np.array(float(row)))
             for row in (500, 2000, 3800)]
    assert ratio == pytest.approx([1.0, 1.0, 1.0], rel=0.03)


def test_frames_are_deterministic_per_seed_and_independent_of_other_ifus(frames, tmp_path):
    again = write_flat_set(tmp_path / "again", [1, 2], count=1, seed=5)[0]
    other = write_flat_set(tmp_path / "other", [1], count=1, seed=8)[0]
    first = fits.getdata(frames["flat"][0], "CHAN01")
    assert np.array_equal(fits.getdata(again, "CHAN01"), first)
    assert not np.array_equal(fits.getdata(other, "CHAN01"), first)
    assert fits.getval(again, "ARCFILE") == frames["flat"][0].name


# --- static tables -----------------------------------------------------------------------------------

def test_static_calibrations_are_recognised_by_their_category(tmp_path):
    written = write_static_calibrations(tmp_path, [1, 2, 5])
    assert set(written) == {"LINE_CATALOG", "GEOMETRY_TABLE", "EXTINCT_TABLE", "STD_FLUX_TABLE", "SKY_LINES",
                            "FILTER_LIST"}
    for category, path in written.items():
        assert fits.getval(path, "INSTRUME") == "MUSE"
        assert classify(read_frame(path)).tag == category


def test_geometry_table_has_48_rows_per_ifu_in_the_field_layout(tmp_path):
    path = write_static_calibrations(tmp_path, [5, 1, 2])["GEOMETRY_TABLE"]
    table = fits.getdata(path, 1)
    assert table.columns.names[:7] == ["SubField", "SliceCCD", "SliceSky", "x", "y", "angle", "width"]
    assert len(table) == 3 * 48
    for ifu in (1, 2, 5):
        rows = table[table["SubField"] == ifu]
        assert list(rows["SliceCCD"]) == list(range(1, 49))
        assert list(rows["SliceSky"]) == list(SLICE_SKY) and sorted(rows["SliceSky"]) == list(range(1, 49))
        assert len(set(zip(rows["x"], rows["y"], strict=True))) == 48  # every slice has its own place
        assert len(set(rows["y"])) == 12 and len(set(rows["x"])) == 4  # 12 slices per stack, 4 stacks
    assert table[table["SubField"] == 1]["y"].min() > table[table["SubField"] == 2]["y"].max()


def test_filter_list_keeps_the_case_of_filter_names(tmp_path):
    path = write_static_calibrations(tmp_path, [1])["FILTER_LIST"]
    with fits.open(path) as hdul:
        names = [hdu.header["EXTNAME"] for hdu in hdul[1:]]
        assert names == list(FILTERS) and "Johnson_V" in names
        assert hdul["Johnson_V"].columns.names == ["lambda", "throughput"]
        assert 0.99 < hdul["Johnson_V"].data["throughput"].max() <= 1.0


def test_flux_and_extinction_tables_carry_the_units_the_recipes_check(tmp_path):
    written = write_static_calibrations(tmp_path, [1])
    with fits.open(written["STD_FLUX_TABLE"]) as hdul:
        assert len(hdul) == 3
        for hdu in hdul[1:]:
            assert hdu.columns["lambda"].unit == "Angstrom" and hdu.columns["flux"].unit == "erg/s/cm**2/Angstrom"
            assert {"RA", "DEC"} <= set(hdu.header)
    extinct = fits.getdata(written["EXTINCT_TABLE"], 1)
    assert extinct.columns.names == ["lambda", "extinction"] and np.all(np.diff(extinct["extinction"]) < 0)
    sky = fits.open(written["SKY_LINES"])
    assert sky[1].header["EXTNAME"] == "LINES"
    assert sky[1].columns.names == ["name", "group", "lambda", "flux", "dq"]
    sky.close()
