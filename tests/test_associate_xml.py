"""ESO archive association files (CalSelector XML): which files belong to a science frame, and why.

The data in tests/data/association follow the structure of the real FORS2 sample shipped with astroquery
(astroquery/eso/tests/data/FORS2.2021-01-02T00:59:12.533_raw2raw.xml), with MUSE names and categories.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from muse_operators.associate import (
    AssociationError,
    archive_name,
    association_files_for,
    category_conflicts,
    category_tag,
    flatten,
    parse_association,
)

DATA = Path(__file__).parent / "data" / "association"
SCI = "MUSE.2024-01-01T01:02:03.456"
RAW2RAW = DATA / f"{SCI}_raw2raw.xml"
RAW2MASTER = DATA / f"{SCI}_raw2master.xml"
INCOMPLETE = DATA / "MUSE.2024-02-10T03:04:05.678_raw2raw.xml"
MALFORMED = DATA / "MUSE.2024-03-01T00:00:00.000_raw2raw.xml"
LAUGHS = DATA / "MUSE.2024-03-02T00:00:00.000_raw2raw.xml"


def _series(prefix: str, start_s: float, count: int, step_s: float) -> set[str]:
    """Archive names of a calibration series, as written in the data files (step + 37 ms per frame)."""
    t0 = datetime.fromisoformat(prefix) + timedelta(seconds=start_s)
    out = set()
    for i in range(count):
        t = t0 + timedelta(seconds=step_s * i, milliseconds=(i * 37) % 1000)
        out.add("MUSE." + t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}")
    return out


BIAS_DAY = _series("2024-01-01T10:01:12.345", 0, 11, 71)
BIAS_PREV = _series("2023-12-31T10:02:20.100", 0, 11, 71)
FLATS = _series("2024-01-01T10:30:05.500", 0, 11, 95)
ARCS = _series("2024-01-01T11:00:10.250", 0, 15, 62)
SKYFLATS = _series("2023-12-31T23:45:01.900", 0, 3, 120)
ILLUM, STD = "MUSE.2024-01-01T01:20:33.210", "MUSE.2024-01-01T00:12:34.567"
STATICS = {"M.MUSE.2023-11-20T09:30:00.001": "GEOMETRY_TABLE", "M.MUSE.2023-11-20T09:31:00.002": "ASTROMETRY_WCS",
           "M.MUSE.2017-06-01T12:00:00.003": "STD_FLUX_TABLE", "M.MUSE.2014-11-01T00:00:00.004": "EXTINCT_TABLE"}


@pytest.fixture(scope="module")
def raw2raw():
    return parse_association(RAW2RAW)


@pytest.fixture(scope="module")
def by_name(raw2raw):
    return {f.name: f for f in flatten(raw2raw)}


def test_root_describes_the_science_frame(raw2raw) -> None:
    assert (raw2raw.category, raw2raw.mode, raw2raw.type) == ("SCI_WFM", "Raw2Raw", "main")
    assert raw2raw.certified is True and raw2raw.complete is True
    assert raw2raw.main_names == (SCI,) and raw2raw.files[0].category == "OBJECT"
    assert raw2raw.source == str(RAW2RAW)
    assert [c.category for c in raw2raw.children] == [
        "BIAS", "FLAT", "WAVE", "SKYFLAT", "ILLUM", "STD", "GEOMETRY_TABLE", "ASTROMETRY_WCS"]


def test_exact_files_and_categories_associated_to_the_science_frame(by_name) -> None:
    expected = {n: "BIAS" for n in BIAS_DAY | BIAS_PREV}
    expected |= {n: "FLAT" for n in FLATS} | {n: "ARC" for n in ARCS} | {n: "SKYFLAT" for n in SKYFLATS}
    expected |= {ILLUM: "ILLUM", STD: "STD"} | STATICS
    assert {name: f.category for name, f in by_name.items()} == expected
    assert len(by_name) == 11 + 11 + 11 + 15 + 3 + 1 + 1 + 4  # day/previous biases, flats, arcs, ...
    assert SCI not in by_name  # the science file itself is not its own calibration ...
    assert all(len(f.categories) == 1 for f in by_name.values())


def test_include_main_adds_the_science_frame_at_depth_zero(raw2raw) -> None:
    files = flatten(raw2raw, include_main=True)
    assert files[0].name == SCI and files[0].placements[0].depth == 0 and not files[0].direct
    assert len(files) == len(flatten(raw2raw)) + 1


def test_names_in_comments_are_not_associated(by_name) -> None:
    # MUSEreduce's substring search over the file text would have matched this name in the XML comment.
    assert "MUSE.2023-12-30T10:11:12.131" in RAW2RAW.read_text()
    assert "MUSE.2023-12-30T10:11:12.131" not in by_name


def test_nested_calibrations_are_attributed_to_the_calibration_that_needs_them(by_name) -> None:
    for name in BIAS_PREV:  # the sky flats' own biases: only the twilight recipe needs them
        f = by_name[name]
        assert not f.direct
        assert [p.path for p in f.placements] == [("SCI_WFM", "SKYFLAT", "BIAS")]
        assert set(f.needed_by) == SKYFLATS
        assert f.placements[0].depth == 2
    for name in SKYFLATS | ARCS | {ILLUM, STD}:
        assert by_name[name].direct and by_name[name].needed_by == (SCI,)
    # static calibrations of the standard star are needed by the standard, not by the science frame
    flux = by_name["M.MUSE.2017-06-01T12:00:00.003"]
    assert not flux.direct and flux.needed_by == (STD,) and flux.placements[0].match == "N/A"


def test_a_file_listed_at_several_places_is_listed_once_with_every_place(by_name) -> None:
    bias = by_name[min(BIAS_DAY)]
    paths = [p.path for p in bias.placements]
    assert paths == [
        ("SCI_WFM", "BIAS"),
        ("SCI_WFM", "FLAT", "BIAS"),
        ("SCI_WFM", "WAVE", "BIAS"),
        ("SCI_WFM", "WAVE", "FLAT", "BIAS"),
        ("SCI_WFM", "STD", "BIAS"),
    ]
    assert bias.direct
    assert set(bias.needed_by) == {SCI} | FLATS | ARCS | {STD}
    flat = by_name[min(FLATS)]
    assert [p.index_path for p in flat.placements] == [(1,), (2, 1)]
    assert set(flat.needed_by) == {SCI} | ARCS


def test_raw2master_keeps_the_master_prefix_and_raw_files_it_delivers() -> None:
    tree = parse_association(RAW2MASTER)
    assert tree.mode == "Raw2Master" and tree.main_names == (SCI,)
    files = {f.name: f for f in flatten(tree)}
    masters = {n: f.category for n, f in files.items() if f.is_master}
    assert masters == {
        "M.MUSE.2024-01-02T08:10:11.111": "MASTER_BIAS", "M.MUSE.2024-01-02T08:20:22.222": "MASTER_FLAT",
        "M.MUSE.2024-01-02T08:20:23.333": "TRACE_TABLE", "M.MUSE.2024-01-02T08:40:44.444": "WAVECAL_TABLE",
        "M.MUSE.2024-01-02T09:00:00.555": "TWILIGHT_CUBE", "M.MUSE.2024-01-02T09:10:10.666": "STD_RESPONSE",
        "M.MUSE.2024-01-02T09:10:11.777": "STD_TELLURIC", "M.MUSE.2023-11-20T09:30:00.001": "GEOMETRY_TABLE",
        "M.MUSE.2023-11-20T09:31:00.002": "ASTROMETRY_WCS",
    }
    assert set(files) - set(masters) == {ILLUM} and not files[ILLUM].is_master
    assert all(f.direct for f in files.values())


def test_incomplete_association_is_reported_with_its_messages() -> None:
    tree = parse_association(INCOMPLETE)
    assert tree.complete is False
    assert tree.incomplete_parts() == ["SCI_WFM", "SCI_WFM/SKYFLAT"]
    messages = tree.all_messages()
    assert messages == [
        "SCI_WFM: Association incomplete: 1 of 5 calibration associations could not be satisfied.",
        "SCI_WFM/SKYFLAT: No SKYFLAT frames found within the validity period (+/- 20 days).",
    ]
    skyflat = next(c for c in tree.children if c.category == "SKYFLAT")
    assert skyflat.files == () and skyflat.complete is False
    std = next(c for c in tree.children if c.category == "STD")
    assert std.certified is False
    assert not any(f.category == "SKYFLAT" for f in flatten(tree))


def test_complete_association_has_no_messages(raw2raw) -> None:
    assert raw2raw.all_messages() == [] and raw2raw.incomplete_parts() == []


def test_malformed_xml_error_names_the_file() -> None:
    with pytest.raises(AssociationError) as err:
        parse_association(MALFORMED)
    assert str(MALFORMED) in str(err.value) and "not well-formed" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_entity_expansion_is_refused_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(AssociationError) as err:
        parse_association(LAUGHS)
    assert time.monotonic() - start < 2.0
    assert str(LAUGHS) in str(err.value) and "entity-expansion" in str(err.value)


def test_external_entity_is_refused(tmp_path: Path) -> None:
    xxe = tmp_path / "MUSE.2024-03-03T00:00:00.000_raw2raw.xml"
    xxe.write_text('<?xml version="1.0"?>\n<!DOCTYPE association [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                   '<association category="SCI_WFM" mode="Raw2Raw"><messages><message>&x;</message></messages>'
                   "</association>\n")
    with pytest.raises(AssociationError, match="refused"):
        parse_association(xxe)


def test_wrong_root_element_is_refused_with_the_file_name(tmp_path: Path) -> None:
    votable = tmp_path / "association_raw2master.xml"
    votable.write_text('<?xml version="1.0"?><VOTABLE version="1.3"><RESOURCE/></VOTABLE>\n')
    with pytest.raises(AssociationError) as err:
        parse_association(votable)
    assert str(votable) in str(err.value) and "<VOTABLE>" in str(err.value) and "VOTable" in str(err.value)


def test_missing_file_and_missing_attributes_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(AssociationError, match="cannot read"):
        parse_association(tmp_path / "absent_raw2raw.xml")
    bad = tmp_path / "x_raw2raw.xml"
    bad.write_text('<association category="SCI_WFM"><mainFiles><file category="OBJECT"/></mainFiles></association>')
    with pytest.raises(AssociationError, match=r"x_raw2raw\.xml.*lacks its name"):
        parse_association(bad)
    bad.write_text('<association category="SCI_WFM" complete="maybe"/>')
    with pytest.raises(AssociationError, match="complete='maybe'"):
        parse_association(bad)


def test_multipart_download_gets_a_hint(tmp_path: Path) -> None:
    multipart = tmp_path / "calselector_raw2raw.xml"
    multipart.write_text("--boundary\nContent-Type: application/xml\n\n" + RAW2RAW.read_text())
    with pytest.raises(AssociationError, match="multipart"):
        parse_association(multipart)


@pytest.mark.parametrize("suffix", [".fits", ".fits.fz", ".fits.gz"])
def test_association_files_for_every_raw_suffix(tmp_path: Path, suffix: str) -> None:
    science = tmp_path / f"{SCI}{suffix}"
    expected = [tmp_path / f"{SCI}_raw2raw.xml", tmp_path / f"{SCI}_raw2master.xml"]
    assert association_files_for(science, existing_only=False) == expected
    assert association_files_for(science) == []
    expected[1].write_text("<association/>")
    assert association_files_for(science) == [expected[1]]
    expected[0].write_text("<association/>")
    assert association_files_for(science) == expected


def test_association_files_for_the_test_data() -> None:
    assert association_files_for(DATA / f"{SCI}.fits.fz") == [RAW2RAW, RAW2MASTER]


def test_association_files_for_rejects_a_non_fits_name() -> None:
    with pytest.raises(AssociationError, match="not a raw FITS file name"):
        association_files_for(RAW2RAW)


@pytest.mark.parametrize(("path", "name"), [
    ("/raw/MUSE.2024-01-01T01:02:03.456.fits.fz", "MUSE.2024-01-01T01:02:03.456"),
    ("/raw/MUSE.2024-01-01T01:02:03.456.fits", "MUSE.2024-01-01T01:02:03.456"),
    ("MUSE.2024-01-01T01:02:03.456.fits.gz", "MUSE.2024-01-01T01:02:03.456"),
    ("/cal/M.MUSE.2024-01-02T08:10:11.111.fits", "M.MUSE.2024-01-02T08:10:11.111"),
    ("M.MUSE.2024-01-02T08:10:11.111", "M.MUSE.2024-01-02T08:10:11.111"),
])
def test_archive_name(path: str, name: str) -> None:
    assert archive_name(path) == name
    assert archive_name(archive_name(path)) == name


def test_category_mapping_is_data_and_keeps_unknown_categories() -> None:
    assert category_tag("SKYFLAT") == "SKYFLAT" and category_tag("MASTER_BIAS") == "MASTER_BIAS"
    assert category_tag("SOMETHING_NEW") == "SOMETHING_NEW"


def test_header_tag_disagreements_are_reported_and_header_wins(by_name) -> None:
    files = list(by_name.values())
    illum_tag = {ILLUM: "FLAT", STD: "STD"}  # as if the ILLUM header classified as a lamp flat
    problems = category_conflicts(files, illum_tag)
    assert len(problems) == 1 and problems[0].startswith(f"{ILLUM}: the archive lists it as ILLUM")
    assert category_conflicts(files, {STD: "STD", min(SKYFLATS): "SKYFLAT"}) == []
