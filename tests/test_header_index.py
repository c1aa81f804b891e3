"""The cached header index: real FITS files written with astropy, scanned cold, warm, after changes."""
from __future__ import annotations

import gzip
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from muse_operators.header_index import RACY_NS, SCHEMA, HeaderIndex, parse_keywords, primary_header_bytes
from muse_operators.headers import KEYWORDS, RawFrame, read_frame, scan
from muse_operators.planner import plan_reduction
from muse_operators.synthetic.headers import FrameSpec, extension_header, primary_header

LONG_AGO = time.time() - 86400.0  # archive files are old; "just written" files are re-read (see RACY_NS)


def age(path: Path, seconds_ago: float = 0.0) -> Path:
    """Date the file well before the scan, as archive files are."""
    os.utime(path, ns=(int((LONG_AGO - seconds_ago) * 1e9),) * 2)
    return path


def write_header_only(path: Path, dpr_type: str = "BIAS", mjd: float = 60300.5, **extra) -> Path:
    spec = FrameSpec("CALIB", dpr_type, mjd, exptime=1.5, tpl_nexp=3, tpl_expno=2, obs_id=123, extra=extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(header=primary_header(spec)).writeto(path, overwrite=True)
    return age(path)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """Four header-only raw files, one in a sub-directory, plus a file that is not raw-named."""
    raw_dir = tmp_path / "raw"
    for i, dpr_type in enumerate(["BIAS", "DARK", "FLAT,LAMP"]):
        write_header_only(raw_dir / f"MUSE.{i}.fits", dpr_type, 60300.5 + i)
    write_header_only(raw_dir / "night2" / "MUSE.9.fits", "WAVE", 60301.5)
    (raw_dir / "notes.txt").write_text("not a FITS file\n")
    return raw_dir


@pytest.fixture
def index(tmp_path: Path) -> HeaderIndex:
    with HeaderIndex(tmp_path / "cache" / "headers.sqlite") as idx:
        yield idx


def test_first_scan_reads_every_file_with_the_values_of_headers_scan(raw, index):
    result = index.scan(raw)
    names = ["MUSE.0.fits", "MUSE.1.fits", "MUSE.2.fits", "night2/MUSE.9.fits"]
    assert [Path(f.path).relative_to(raw).as_posix() for f in result.frames] == names
    assert index.last_read == [str(raw / name) for name in names] and index.reads == 4
    assert result.unreadable == []
    assert result.frames == scan(raw).frames  # same values, types and order as the uncached reader
    assert scan(str(raw)).frames == result.frames  # a directory given as str is read as a directory, not as characters
    bias = result.frames[0]
    assert (bias.instrument, bias.dpr_catg, bias.dpr_type, bias.dpr_tech) == ("MUSE", "CALIB", "BIAS", "IFU")
    assert bias.mjd_obs == 60300.5 and isinstance(bias.mjd_obs, float)
    assert (bias.exptime, bias.obs_id, bias.tpl_nexp, bias.tpl_expno) == (1.5, 123, 3, 2)
    assert isinstance(bias.obs_id, int) and bias.arcfile == "MUSE.2023-12-22T12:00:00.000.fits"
    assert result.frames[2].dpr_type == "FLAT,LAMP" and result.frames[1].pro_catg is None


def test_unchanged_archive_is_not_read_again_even_by_a_new_process(raw, index, tmp_path):
    first = index.scan(raw)
    assert index.scan(raw) == first
    assert index.last_read == [] and index.reads == 4
    with HeaderIndex(index.db_path) as other:  # e.g. the next DAG run
        assert other.scan(raw) == first and other.reads == 0


def test_modified_file_is_read_again_and_its_new_value_returned(raw, index):
    index.scan(raw)
    target = raw / "MUSE.1.fits"
    size = target.stat().st_size
    write_header_only(target, "DRAK", 60300.5 + 1)  # same size, new value
    age(target, seconds_ago=-60)  # touched: a different mtime
    assert target.stat().st_size == size
    result = index.scan(raw)
    assert index.last_read == [str(target)]
    assert [f.dpr_type for f in result.frames] == ["BIAS", "DRAK", "FLAT,LAMP", "WAVE"]


def test_rewrite_that_restores_size_and_mtime_is_still_seen(raw, index):
    """cp -p / rsync --inplace keep size and mtime; the inode change time still differs."""
    index.scan(raw)
    target = raw / "MUSE.0.fits"
    time.sleep(0.05)  # ctime has per-tick (~4 ms) resolution
    write_header_only(target, "DORK")  # age() restores the very same mtime
    assert index.scan(raw).frames[0].dpr_type == "DORK" and index.last_read == [str(target)]


def test_file_modified_just_before_a_scan_is_not_trusted_on_the_next(raw, index):
    index.scan(raw)
    fresh = write_header_only(raw / "MUSE.5.fits", "DARK")
    os.utime(fresh)  # now: within RACY_NS of the scan, so a same-tick rewrite could go unnoticed
    index.scan(raw)
    assert index.last_read == [str(fresh)]
    index.scan(raw)
    assert index.last_read == [str(fresh)]  # still racily clean: read again rather than trusted
    age(fresh)
    index.scan(raw)
    index.scan(raw)
    assert index.last_read == [] and RACY_NS >= 1_000_000_000


def test_deleted_file_disappears_from_scan_and_database(raw, index):
    index.scan(raw)
    (raw / "night2" / "MUSE.9.fits").unlink()
    result = index.scan(raw)
    assert [Path(f.path).name for f in result.frames] == ["MUSE.0.fits", "MUSE.1.fits", "MUSE.2.fits"]
    assert index.last_read == [] and index.last_dropped == 1
    with sqlite3.connect(index.db_path) as db:
        assert db.execute("SELECT count(*) FROM frames").fetchone() == (3,)


def test_unreadable_file_is_reported_on_every_scan_until_fixed(raw, index):
    broken = raw / "MUSE.x.fits"
    broken.write_bytes(b"\x00garbage\xff" * 500)
    age(broken)
    first = index.scan(raw)
    assert len(first.frames) == 4
    assert [path for path, _ in first.unreadable] == [str(broken)]
    assert "SIMPLE" in first.unreadable[0][1]
    again = index.scan(raw)
    assert again.unreadable == first.unreadable and index.last_read == []  # reported, not re-read
    write_header_only(broken, "BIAS")
    fixed = index.scan(raw)
    assert fixed.unreadable == [] and index.last_read == [str(broken)]
    assert str(broken) in [f.path for f in fixed.frames]


def test_truncated_header_and_dangling_link_are_reported(raw, index):
    data = (raw / "MUSE.0.fits").read_bytes()
    cut = raw / "MUSE.cut.fits"
    cut.write_bytes(data[:2880])  # the header of these files is longer than one block
    (raw / "MUSE.link.fits").symlink_to(raw / "missing.fits")
    reasons = dict(index.scan(raw).unreadable)
    assert "no END card" in reasons[str(cut)]
    assert "FileNotFoundError" in reasons[str(raw / "MUSE.link.fits")]


def test_text_where_a_number_belongs_is_reported_by_file_and_keyword(raw, index, tmp_path):
    """EXPTIME 'abc', a logical MJD-OBS: both readers name the file and the keywords; the plan lists it, no traceback.

    (Before, the values passed as text and the association rules crashed comparing str with float.)
    """
    bad = write_header_only(raw / "MUSE.bad.fits", "BIAS", **{"EXPTIME": "abc", "RA": True})
    with fits.open(bad, mode="update") as hdul:
        hdul[0].header["MJD-OBS"] = "notanumber"
    age(bad)
    for reader in (index.scan, scan):
        result = reader(raw)
        reasons = dict(result.unreadable)
        assert list(reasons) == [str(bad)] and len(result.frames) == 4, reader
        assert "MJD-OBS = 'notanumber'" in reasons[str(bad)] and "EXPTIME = 'abc'" in reasons[str(bad)]
        assert "RA = True" in reasons[str(bad)] and "move the file out of the raw directory" in reasons[str(bad)]
    plan = plan_reduction(raw, tmp_path / "out", {"global": {"using_ESO_Calibration": False}},
                          index_path=tmp_path / "cache" / "plan.sqlite")
    assert any(line.startswith(f"UNREADABLE {bad}: ") and "EXPTIME = 'abc'" in line for line in plan.describe())
    assert str(bad) not in {i.path for step in plan.steps for i in step.inputs}


def test_compressed_fz_and_gz_files_are_indexed(tmp_path, index):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    chip = np.arange(64 * 32, dtype=np.uint16).reshape(32, 64)
    fz = raw_dir / "MUSE.a.fits.fz"
    primary = fits.PrimaryHDU(header=primary_header(FrameSpec("CALIB", "WAVE", 60310.25, tpl_nexp=5)))
    live = fits.CompImageHDU(chip, header=extension_header(1))
    dead = fits.ImageHDU(None, header=extension_header(2, live=False))
    fits.HDUList([primary, live, dead]).writeto(fz)
    plain = raw_dir / "MUSE.b.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary_header(FrameSpec("SCIENCE", "OBJECT", 60310.5))),
                  fits.ImageHDU(chip, header=extension_header(3))]).writeto(plain)
    gz = raw_dir / "MUSE.c.fits.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (fz, plain, gz):
        age(path)
    assert primary_header_bytes(str(fz)).startswith(b"SIMPLE  =")
    result = index.scan(raw_dir)
    assert result.unreadable == []
    assert [(Path(f.path).name, f.dpr_type, f.tpl_nexp, f.ifus) for f in result.frames] == [
        ("MUSE.a.fits.fz", "WAVE", 5, []), ("MUSE.b.fits", "OBJECT", 1, []), ("MUSE.c.fits.gz", "OBJECT", 1, [])]
    assert result.frames == scan(raw_dir).frames

    with_ifus = index.scan(raw_dir, with_ifus=True)  # IFUs were not read yet: these files are read again
    assert len(index.last_read) == 3
    assert [f.ifus for f in with_ifus.frames] == [[1], [3], [3]] == [
        read_frame(Path(f.path), with_ifus=True).ifus for f in with_ifus.frames]
    assert index.scan(raw_dir, with_ifus=True) == with_ifus and index.last_read == []
    assert [f.ifus for f in index.scan(raw_dir).frames] == [[], [], []]  # as headers.scan without IFUs


def test_ifus_survive_a_concurrent_scan_without_ifus(raw, index):
    """A manual run without IFUs may replace rows between this scan's write and its read-back."""
    chip = raw / "MUSE.chip.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary_header(FrameSpec("CALIB", "BIAS", 60300.5))),
                  fits.ImageHDU(np.zeros((4, 4), np.uint16), header=extension_header(7))]).writeto(chip)
    age(chip)
    write = index._write

    def write_then_other_scan(*args):
        write(*args)
        with sqlite3.connect(index.db_path) as db:  # what the other scan's INSERT OR REPLACE leaves
            db.execute("UPDATE frames SET ifus = NULL")

    index._write = write_then_other_scan
    result = index.scan(raw, with_ifus=True)
    assert [f.ifus for f in result.frames if f.path == str(chip)] == [[7]]
    del index._write
    assert index.scan(raw, with_ifus=True) == result and len(index.last_read) == 5  # rows lacked IFUs


def test_odd_but_valid_cards_read_as_astropy_reads_them(tmp_path, index):
    """Long CONTINUE strings, D exponents, integers for reals, undefined values, quotes, duplicates."""
    raw_dir = tmp_path / "raw"
    path = write_header_only(raw_dir / "MUSE.odd.fits", "BIAS", **{
        "ESO OBS NAME": "a 'quoted' and very long observation block name " * 3, "ESO TPL NEXP": 3.0})
    header = fits.getheader(path)
    header["MJD-OBS"] = 60300
    header["EXPTIME"] = None
    header.append(("INSTRUME", "SECOND"))  # astropy returns the first of duplicate keywords
    fits.PrimaryHDU(header=header).writeto(path, overwrite=True)
    card = b"RA      = " + b"0.0".rjust(20)
    text = path.read_bytes()
    assert text.count(card) == 1
    path.write_bytes(text.replace(card, b"RA      = " + b"1.5D+1".rjust(20)))  # as some writers do
    age(path)
    frame = index.scan(raw_dir).frames[0]
    reference = read_frame(path)
    assert frame == reference and frame.ra == 15.0 and frame.exptime is None and frame.instrument == "MUSE"
    assert frame.obs_name.startswith("a 'quoted'") and len(frame.obs_name) > 140
    assert frame.mjd_obs == 60300.0 and isinstance(frame.mjd_obs, float)  # stored with RawFrame's types
    assert frame.tpl_nexp == 3 and isinstance(frame.tpl_nexp, int)
    assert parse_keywords(primary_header_bytes(str(path)))["obs_name"] == reference.obs_name


@pytest.mark.parametrize("value", [
    "'abc'", "'it''s'", "'  lead'", "'trail   '", "''", "T", "F", "+0012", "-7", "1.5", "-.5", "1.e3", "1E5",
    "2.5D-3", "", "'a&'", "(1, 2)", "'AXIS.1: 5'", "'a/b' / c", "12 / it's", "'x' junk", "1 . 5", "'unclosed"])
@pytest.mark.parametrize("keyword", ["HIERARCH ESO DPR CATG", "MJD-OBS"])
def test_fast_card_parser_agrees_with_astropy(keyword, value):
    """Values the fast parser reads itself, hands to astropy, or that astropy rejects (then both raise)."""
    image = (f"{keyword} = {value}" if keyword.startswith("HIERARCH") else f"{keyword:<8}= {value:>20}").ljust(80)
    attr = KEYWORDS[keyword]
    try:
        expected = fits.Header.fromstring(image + "END".ljust(80)).get(keyword)
    except Exception as exc:  # noqa: BLE001 - astropy's verdict on a malformed card
        with pytest.raises(type(exc)):
            parse_keywords(image.encode("ascii"))
    else:
        got = parse_keywords(image.encode("ascii"))[attr]
        assert (type(got), got) == (type(expected), expected)


def test_database_with_an_old_schema_is_rebuilt(raw, tmp_path):
    db_path = tmp_path / "headers.sqlite"
    with HeaderIndex(db_path) as idx:
        idx.scan(raw)
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE meta SET value = '0:old' WHERE key = 'schema'")
        db.execute("UPDATE frames SET dpr_type = 'STALE'")
    with HeaderIndex(db_path) as idx:
        result = idx.scan(raw)
        assert idx.reads == 4 and "STALE" not in {f.dpr_type for f in result.frames}
    legacy = tmp_path / "legacy.sqlite"
    with sqlite3.connect(legacy) as db:  # a table of another layout and no schema record at all
        db.execute("CREATE TABLE frames (path TEXT PRIMARY KEY, header TEXT)")
        db.execute("INSERT INTO frames VALUES (?, 'x')", (str(raw / "MUSE.0.fits"),))
    with HeaderIndex(legacy) as idx:
        assert idx.scan(raw).frames == scan(raw).frames and idx.reads == 4
    with sqlite3.connect(legacy) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (SCHEMA,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_directories_sharing_one_database_keep_their_rows(raw, index, tmp_path):
    sibling = tmp_path / "raw-b"  # sorts between raw/ and raw0 as a string: the prefix range must not leak
    write_header_only(sibling / "MUSE.s.fits", "DARK")
    index.scan(raw)
    index.scan(sibling)
    (raw / "MUSE.0.fits").unlink()
    assert len(index.scan(raw).frames) == 3
    assert [f.dpr_type for f in index.scan(sibling).frames] == ["DARK"] and index.last_read == []


def test_missing_directory_raises_and_keeps_the_cache(raw, index, tmp_path):
    index.scan(raw)
    with pytest.raises(NotADirectoryError):
        index.scan(tmp_path / "unmounted")
    raw.rename(tmp_path / "elsewhere")
    with pytest.raises(NotADirectoryError):
        index.scan(raw)
    (tmp_path / "elsewhere").rename(raw)
    assert len(index.scan(raw).frames) == 4 and index.last_read == []


def test_table_view_lists_frames_and_unreadable_files(raw, index):
    (raw / "MUSE.x.fits").write_bytes(b"junk")
    table = index.table(raw)
    assert len(table) == 5
    assert list(table["filename"]) == ["MUSE.0.fits", "MUSE.1.fits", "MUSE.2.fits", "MUSE.x.fits", "MUSE.9.fits"]
    assert table["mjd_obs"].dtype.kind == "f" and table["obs_id"].dtype.kind == "i"
    assert table["mjd_obs"][0] == 60300.5 and table["mjd_obs"].mask[3] and table["dpr_type"][1] == "DARK"
    assert "SIMPLE" in table["unreadable"][3] and table["unreadable"][0] == ""
    assert "MUSE.x.fits" in "\n".join(table.pformat(max_width=-1))


def _scan_in_process(args: tuple[str, str]) -> tuple[int, list[RawFrame], list]:
    db_path, raw_dir = args
    with HeaderIndex(db_path, timeout_s=60) as idx:
        result = idx.scan(raw_dir)
        return idx.reads, result.frames, result.unreadable


def test_two_processes_scanning_at_once_agree(tmp_path):
    raw_dir = tmp_path / "raw"
    for i in range(300):
        write_header_only(raw_dir / f"MUSE.{i:04d}.fits", ("BIAS", "DARK", "WAVE")[i % 3], 60300.5 + i / 1440)
    db_path = str(tmp_path / "headers.sqlite")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_scan_in_process, [(db_path, str(raw_dir))] * 2)
    expected = scan(raw_dir).frames
    for _reads, frames, unreadable in results:
        assert frames == expected and unreadable == []
    reads, frames, _ = _scan_in_process((db_path, str(raw_dir)))
    assert reads == 0 and frames == expected


def test_fast_ifu_walker_agrees_with_astropy(tmp_path):
    """The block walker used by the index lists the same live IFUs as astropy, plain and fpacked."""
    import numpy as np
    from astropy.io import fits

    from muse_operators.fast_fits import live_ifus as fast
    from muse_operators.headers import live_ifus as reference
    from muse_operators.synthetic.headers import FrameSpec, extension_header, primary_header

    spec = FrameSpec("CALIB", "BIAS", 60300.5)
    data = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    plain = tmp_path / "MUSE.plain.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary_header(spec)),
                  fits.ImageHDU(data, extension_header(1)),
                  fits.ImageHDU(None, extension_header(2, live=False)),
                  fits.ImageHDU(data[:7, :5], extension_header(3)),
                  fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.ones(3))], name="OTHER"),
                  fits.ImageHDU(data, extension_header(5, live=False))]).writeto(plain)
    packed = tmp_path / "MUSE.packed.fits.fz"
    fits.HDUList([fits.PrimaryHDU(header=primary_header(spec)),
                  fits.CompImageHDU(data, extension_header(4)),
                  fits.ImageHDU(None, extension_header(6, live=False))]).writeto(packed)
    assert fast(str(plain)) == reference(plain) == [1, 3]
    assert fast(str(packed)) == reference(packed) == [4]
    (tmp_path / "MUSE.cut.fits").write_bytes(plain.read_bytes()[:2880 * 3 + 100])
    with pytest.raises(ValueError):
        fast(str(tmp_path / "MUSE.cut.fits"))
