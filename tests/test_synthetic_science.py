"""The synthetic science night: schedule and headers, the field geometry, the rendered light, determinism."""
from __future__ import annotations

import hashlib
import json
import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from muse_operators.cli import main
from muse_operators.synthetic.headers import lst_deg, primary_header
from muse_operators.synthetic.scene import Moffat, PointSource, Scene, atmosphere, response, science_scene
from muse_operators.synthetic.schedule import DITHERS_ARCSEC, SHORT_EXPTIME, SKY_OFFSET_ARCSEC, night_schedule
from muse_operators.synthetic.sky_frames import (PIXEL_AREA_ARCSEC2, Observation, Pointing, field_wcs,
                                                 render_ifu)
from muse_operators.synthetic.static_tables import STANDARD_STARS


@pytest.fixture(scope="module")
def two_obs():
    return night_schedule(0, obs=2, exposures=3)


def test_each_ob_is_one_template_with_a_sky_exposure(two_obs):
    planned, _ = two_obs
    by_ob: dict[str, list] = {}
    for exposure in planned:
        by_ob.setdefault(exposure.ob, []).append(exposure)
    obs = [name for name in by_ob if not name.startswith("STD_")]
    assert len(obs) == 2
    for name in obs:
        frames = by_ob[name]
        assert len({f.spec.tpl_start for f in frames}) == 1, "one TPL START per OB"
        assert [f.spec.tpl_expno for f in frames] == list(range(1, len(frames) + 1))
        assert {f.spec.tpl_nexp for f in frames} == {len(frames)}
        assert [f.kind for f in frames] == ["OBJECT", "SKY", "OBJECT", "OBJECT"]
        assert [f.spec.exptime for f in frames if f.kind == "OBJECT"] == [600.0, 600.0, SHORT_EXPTIME]
        times = [f.spec.mjd_obs for f in frames]
        assert times == sorted(times) and len(set(times)) == len(times)
    # the two OBs share one target (one pointing split across OBs) and continue its dither pattern
    first, second = (by_ob[name] for name in obs)
    assert {f.target for f in first + second} == {first[0].target}
    dithers = [tuple(f.dither_arcsec) for f in first + second if f.kind == "OBJECT"]
    assert dithers == list(DITHERS_ARCSEC[:6])
    rotations = [f.observation.pointing.posang for f in first + second if f.kind == "OBJECT"]
    assert rotations == [0.0, 180.0, 90.0, 0.0, 180.0, 90.0]


def test_sky_keywords_are_consistent_with_time_and_place(two_obs):
    planned, scenes = two_obs
    for exposure in planned:
        header = primary_header(exposure.spec)
        hour_angle = (header["LST"] / 240.0 - header["RA"] + 180.0) % 360.0 - 180.0
        assert abs(hour_angle) < 20.0, f"{exposure.kind} observed {hour_angle:.1f} deg from the meridian"
        alt = header["HIERARCH ESO TEL ALT"]
        assert header["HIERARCH ESO TEL AIRM START"] == pytest.approx(1.0 / math.sin(math.radians(alt)), rel=1e-3)
        assert header["HIERARCH ESO DPR CATG"] == ("CALIB" if exposure.kind == "STD" else "SCIENCE")
        assert header["HIERARCH ESO DPR TYPE"] == exposure.kind
        assert header["HIERARCH ESO INS DROT POSANG"] == exposure.observation.pointing.posang
        assert header["HIERARCH ESO INS DROT MODE"] == "SKY"
        assert lst_deg(exposure.spec.mjd_obs) == pytest.approx(header["LST"] / 240.0, abs=1e-3)
    sky = next(e for e in planned if e.kind == "SKY")
    target = scenes[sky.target]
    separation = SkyCoord(sky.spec.ra, sky.spec.dec, unit="deg").separation(SkyCoord(target.ra, target.dec, unit="deg"))
    assert separation.arcsec == pytest.approx(SKY_OFFSET_ARCSEC, abs=0.5)
    std = next(e for e in planned if e.kind == "STD")
    assert (std.spec.ra, std.spec.dec) == (STANDARD_STARS[0].ra, STANDARD_STARS[0].dec)


@pytest.mark.parametrize("posang, east_sign, north_sign", [(0.0, -1, 1), (180.0, 1, -1)])
def test_field_wcs_follows_the_pipeline_conventions(posang, east_sign, north_sign):
    """East is -x at POSANG 0 (CD1_1 < 0 in muse_wcs_create_default); SKY-mode POSANG rotates the field."""
    wcs = field_wcs(Pointing(30.0, -25.0, posang), [1, 2, 3])
    x0, y0 = wcs.wcs.crpix
    assert (x0, y0) == pytest.approx((0.0, 126.0))  # the centre of IFUs 1-3's extent
    east = SkyCoord(30.0, -25.0, unit="deg").spherical_offsets_by(1 * u.arcsec, 0 * u.arcsec)
    x, y = wcs.world_to_pixel(east)
    assert np.sign(x + 1 - x0) == east_sign and abs(abs(x + 1 - x0) - 5.0) < 1e-6  # 1" = 5 spaxels
    north = SkyCoord(30.0, -25.0, unit="deg").spherical_offsets_by(0 * u.arcsec, 1 * u.arcsec)
    x, y = wcs.world_to_pixel(north)
    assert np.sign(y + 1 - y0) == north_sign and abs(abs(y + 1 - y0) - 5.0) < 1e-6
    quarter = field_wcs(Pointing(30.0, -25.0, 90.0), [1, 2, 3])
    x, y = quarter.world_to_pixel(east)
    assert abs(y + 1 - y0) == pytest.approx(5.0, abs=1e-6) and abs(x + 1 - x0) < 1e-6


def test_a_star_puts_its_flux_on_the_ccd_where_the_wcs_says():
    """Total electrons of a star = ∫ f_λ · response · atmosphere dλ · EXPTIME (minus what the PSF loses)."""
    pointing = Pointing(30.0, -25.0, 0.0)
    star = PointSource("S", 30.0, -25.0 + 0.4 / 3600, flux_6000=3e-16)  # 2 spaxels north of the field centre
    psf = Moffat(0.8)
    with_star = Observation(pointing, 100.0, 1.0, Scene("t", 30.0, -25.0, [star]), psf, sky_scale=0.0)
    image = np.zeros((4112, 4096))
    for ifu in (1, 2, 3):
        image += render_ifu(with_star, ifu, [1, 2, 3])
    from muse_operators.synthetic.lamps import dispersion, wavelength

    rows = np.arange(1, 4113)
    lam = wavelength(rows)
    expected = np.sum(star.spectrum(lam) * dispersion(rows) * response(lam) * atmosphere(lam, 1.0)) * 100.0
    # the star sits 6 spaxels inside a 36-spaxel strip: the PSF's wings beyond ±3.6" in y are lost
    assert image.sum() == pytest.approx(expected, rel=0.04)
    assert image.sum() < expected
    # and its light is in the slices of sky-row 128 (y = 126 + 2), in stack 2/3 around x = 0
    profile = image.sum(axis=0)
    assert profile.max() > 5 * np.median(profile[profile > 0])
    assert PIXEL_AREA_ARCSEC2 == pytest.approx(75 / 78 * 0.04)


def test_the_nebula_fills_the_field_and_peaks_east_of_centre():
    scene = science_scene("T", 30.0, -25.0)
    nebula = scene.nebula
    assert nebula is not None
    peak = nebula.surface_brightness("[OI]6300", 0.0)
    edge = nebula.surface_brightness("[OI]6300", 30.0)
    assert edge == pytest.approx(nebula.line_floors["[OI]6300"], rel=1e-6) and peak == pytest.approx(2 * edge)
    assert len(scene.stars) >= 12 and sum(1 for s in scene.stars if _within(s, scene, 3.6)) >= 5


def _within(star: PointSource, scene: Scene, half_arcsec: float) -> bool:
    offset = SkyCoord(scene.ra, scene.dec, unit="deg").spherical_offsets_to(SkyCoord(star.ra, star.dec, unit="deg"))
    return all(abs(o.to_value("arcsec")) <= half_arcsec for o in offset)


@pytest.fixture(scope="module")
def small_night(tmp_path_factory):
    """A one-IFU night written through the CLI (one OB of one exposure, a SKY, a standard star)."""
    root = tmp_path_factory.mktemp("small_night")
    assert main(["demo-data", str(root / "a"), *SMALL_NIGHT_ARGS]) == 0
    return root / "a"


SMALL_NIGHT_ARGS = ["--ifus", "1", "--exposures", "1", "--seed", "7", "--illum", "--extra-statics"]


def test_demo_data_is_deterministic_and_has_a_manifest(small_night, tmp_path, capsys):
    """Two runs with one seed give identical frames (data and every header value but CHECKSUM, which covers
    astropy's time-of-writing comment; DATASUM must agree); the manifest lists every frame with its truth."""
    assert main(["demo-data", str(tmp_path / "b"), *SMALL_NIGHT_ARGS]) == 0
    capsys.readouterr()

    def digest(path):
        sha = hashlib.sha256()
        with fits.open(path) as hdul:
            for hdu in hdul:
                sha.update(repr([(c.keyword, c.value) for c in hdu.header.cards if c.keyword != "CHECKSUM"]).encode())
                if hdu.data is not None:
                    sha.update(np.ascontiguousarray(hdu.data).tobytes())
        return sha.hexdigest()

    frames_a = sorted(small_night.glob("MUSE.*.fits"))
    assert [f.name for f in frames_a] == sorted(f.name for f in (tmp_path / "b").glob("MUSE.*.fits"))
    assert all(digest(f) == digest(tmp_path / "b" / f.name) for f in frames_a)
    manifest = json.loads((small_night / "manifest.json").read_text())
    kinds = sorted(e["kind"] for e in manifest["exposures"])
    assert kinds == ["OBJECT", "SKY", "STD"]
    files = {f.name for f in frames_a}
    assert {e["file"] for e in manifest["exposures"]} <= files
    assert set(sum(manifest["nights"][0]["calibrations"].values(), [])) <= files
    obj = next(e for e in manifest["exposures"] if e["kind"] == "OBJECT")
    with fits.open(small_night / obj["file"]) as hdul:
        assert hdul[0].header["HIERARCH ESO DPR TYPE"] == "OBJECT"
        assert [h.header["HIERARCH ESO DET CHIP LIVE"] for h in hdul[1:]] == [True] + [False] * 23
        assert hdul["CHAN01"].data.shape == (4240, 4224)
    assert obj["target"] in manifest["scenes"]


def test_association_files_nest_like_the_archive_and_agree_with_the_rules(small_night, tmp_path, capsys):
    """demo-data writes raw2raw/raw2master beside each science frame (as the archive delivers them); the
    planner's header rules choose the same frames."""
    from muse_operators.associate.xml import flatten, parse_association

    raw = small_night
    manifest = json.loads((raw / "manifest.json").read_text())
    statics = {fits.getval(p, "HIERARCH ESO PRO CATG"): p for p in (raw / "static").glob("*.fits")}
    written = sorted(raw.glob("*_raw2*.xml"))
    assert len(written) == 2 * len(manifest["exposures"])
    obj = next(e for e in manifest["exposures"] if e["kind"] == "OBJECT")
    tree = parse_association(raw / obj["file"].replace(".fits", "_raw2raw.xml"))
    assert tree.mode == "Raw2Raw" and tree.main_names == (obj["file"][:-5],)
    files = {f.name: f for f in flatten(tree)}
    calibrations = manifest["nights"][0]["calibrations"]
    assert set(files) == {n[:-5] for names in calibrations.values() for n in names} | {
        e["file"][:-5] for e in manifest["exposures"] if e["kind"] == "STD"}
    a_bias = calibrations["BIAS"][0][:-5]
    assert {"SCIENCE/BIAS", "SCIENCE/SKYFLAT/BIAS"} <= {"/".join(p.path) for p in files[a_bias].placements}
    masters = parse_association(raw / obj["file"].replace(".fits", "_raw2master.xml"))
    assert {f.category for f in flatten(masters)} == set(statics)
    capsys.readouterr()
    code = main(["plan", str(raw), str(tmp_path / "out"), "--config", str(_own_calibrations(tmp_path))])
    report = capsys.readouterr().out
    assert code == 0, report
    assert "XML disagreement" not in report


def _own_calibrations(tmp_path):
    path = tmp_path / "own.json"
    path.write_text(json.dumps({"global": {"using_ESO_Calibration": False}}))
    return path


def test_optional_calibrations_have_the_pipeline_formats(small_night, tmp_path):
    """ILLUM (attached flat), DARK, BADPIX_TABLE and ASTROMETRY_WCS: the keywords and columns the recipes read."""
    from muse_operators.synthetic.calibration_frames import write_dark_set

    manifest = json.loads((small_night / "manifest.json").read_text())
    (illum,) = manifest["nights"][0]["calibrations"]["ILLUM"]
    header = fits.getheader(small_night / illum)
    assert header["HIERARCH ESO DPR TYPE"] == "FLAT,LAMP,ILLUM" and header["HIERARCH ESO DPR CATG"] == "CALIB"
    first_object = min(e["mjd_obs"] for e in manifest["exposures"] if e["kind"] == "OBJECT")
    assert 0 < first_object - header["MJD-OBS"] < 0.5 / 24, "the attached flat comes just before the OB"
    darks = write_dark_set(tmp_path, [1], count=3, seed=1)
    headers = [fits.getheader(d) for d in darks]
    assert [h["HIERARCH ESO DPR TYPE"] for h in headers] == ["DARK"] * 3
    assert {h["HIERARCH ESO TPL NEXP"] for h in headers} == {3} and {h["EXPTIME"] for h in headers} == {1800.0}
    with fits.open(small_night / "static" / "badpix_table.fits") as hdul:
        assert hdul[0].header["HIERARCH ESO PRO CATG"] == "BADPIX_TABLE"
        assert hdul["CHAN01"].columns.names == ["xpos", "ypos", "status", "value"]
    wcs_header = fits.getheader(small_night / "static" / "astrometry_wcs_wfm.fits")
    assert wcs_header["HIERARCH ESO PRO CATG"] == "ASTROMETRY_WCS" and wcs_header["CD2_2"] == pytest.approx(0.2 / 3600)
    with fits.open(small_night / "static" / "vignetting_mask.fits") as hdul:
        assert hdul[0].header["HIERARCH ESO PRO CATG"] == "VIGNETTING_MASK"
        assert hdul[0].data.dtype == np.uint8 and 0 < hdul[0].data.sum() < hdul[0].data.size


@pytest.mark.container
def test_fpacked_frames_are_planned_and_reduced_like_plain_ones(esorex_image, tmp_path, capsys):
    """--fz writes MUSE.*.fits.fz as the archive ships them: pixels unchanged, planned, read by the recipes."""
    from muse_operators.synthetic.fpack import fpack
    from muse_operators.synthetic.raw_frames import write_bias_set

    from .recipe_runner import run_recipe

    raw = tmp_path / "raw"
    raw.mkdir(mode=0o755)
    plain = write_bias_set(raw, [1], count=3, seed=9)
    pixels = fits.getdata(plain[0], "CHAN01")
    packed = [fpack(p) for p in plain]
    assert [p.name for p in packed] == [p.name + ".fz" for p in plain] and not any(p.exists() for p in plain)
    assert np.array_equal(fits.getdata(packed[0], "CHAN01"), pixels)
    assert packed[0].stat().st_size < 0.5 * pixels.nbytes
    capsys.readouterr()
    assert main(["plan", str(raw), str(tmp_path / "out"), "--config", str(_own_calibrations(tmp_path))]) == 0
    assert "muse_bias --nifu=1" in capsys.readouterr().out
    run = run_recipe(esorex_image, "muse_bias", [(p, "BIAS") for p in packed], tmp_path / "master",
                     {"nifu": 1}, expected=["MASTER_BIAS"])
    master = fits.getdata(run.products["MASTER_BIAS"][0], "DATA")
    assert master.shape == (4112, 4096) and abs(float(np.median(master))) < 1.0
