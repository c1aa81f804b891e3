"""Read the primary headers of raw MUSE files into :class:`RawFrame` records.

Only the primary header is read (astropy ``fits.getheader``, which stops there), so scanning a night
of 24-IFU frames costs milliseconds per file. A file that cannot be read is reported with its reason;
it is never silently skipped.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astropy.io import fits

RAW_SUFFIXES = (".fits", ".fits.fz", ".fits.gz")

# Header keyword → RawFrame attribute: the keywords the classification and association rules use.
KEYWORDS = {
    "INSTRUME": "instrument",
    "HIERARCH ESO DPR CATG": "dpr_catg",
    "HIERARCH ESO DPR TYPE": "dpr_type",
    "HIERARCH ESO DPR TECH": "dpr_tech",
    "HIERARCH ESO PRO CATG": "pro_catg",
    "MJD-OBS": "mjd_obs",
    "DATE-OBS": "date_obs",
    "EXPTIME": "exptime",
    "RA": "ra",
    "DEC": "dec",
    "HIERARCH ESO INS MODE": "ins_mode",
    "HIERARCH ESO INS DROT POSANG": "posang",
    "HIERARCH ESO OBS NAME": "obs_name",
    "HIERARCH ESO OBS ID": "obs_id",
    "HIERARCH ESO OBS PROG ID": "prog_id",
    "HIERARCH ESO OBS TARG NAME": "targ_name",
    "HIERARCH ESO TPL START": "tpl_start",
    "HIERARCH ESO TPL NEXP": "tpl_nexp",
    "HIERARCH ESO TPL EXPNO": "tpl_expno",
    "HIERARCH ESO DET READ CURNAME": "read_curname",
    "HIERARCH ESO INS TEMP7 VAL": "ins_temp7",
    "ARCFILE": "arcfile",
    "ORIGFILE": "origfile",
}


@dataclass
class RawFrame:
    """The header facts of one file that reduction decisions are made from."""

    path: str
    instrument: str | None = None
    dpr_catg: str | None = None
    dpr_type: str | None = None
    dpr_tech: str | None = None
    pro_catg: str | None = None
    mjd_obs: float | None = None
    date_obs: str | None = None
    exptime: float | None = None
    ra: float | None = None
    dec: float | None = None
    ins_mode: str | None = None
    posang: float | None = None
    obs_name: str | None = None
    obs_id: int | None = None
    prog_id: str | None = None
    targ_name: str | None = None
    tpl_start: str | None = None
    tpl_nexp: int | None = None
    tpl_expno: int | None = None
    read_curname: str | None = None
    ins_temp7: float | None = None
    arcfile: str | None = None
    origfile: str | None = None
    ifus: list[int] = field(default_factory=list)

    @classmethod
    def from_header(cls, path: str, header: fits.Header) -> RawFrame:
        values: dict[str, Any] = {attr: header.get(key) for key, attr in KEYWORDS.items()}
        check_value_types(values)
        return cls(path=path, **values)


# RawFrame attributes the rules compute with (times, positions, counts): a header must give them as numbers.
NUMERIC_FIELDS = {f.name for f in dataclasses.fields(RawFrame)
                  if str(f.type).split("|")[0].strip() in ("float", "int")}
_KEYWORD_OF = {attr: keyword.removeprefix("HIERARCH ") for keyword, attr in KEYWORDS.items()}


class HeaderValueError(ValueError):
    """A keyword the rules compute with holds text, a logical or a complex value instead of a number."""


def check_value_types(values: Mapping[str, Any]) -> None:
    """Refuse a file whose numeric keywords (MJD-OBS, EXPTIME, RA, ...) are not numbers, naming each one.

    Such a frame cannot be ordered in time, grouped or matched to calibrations; taken as it is, it crashed the
    planner deep inside the association rules without naming the file. The caller reports the file as
    unreadable with this message (it is left out of the plan, which lists it).
    """
    bad = [f"{_KEYWORD_OF[attr]} = {value!r}" for attr, value in values.items()
           if attr in NUMERIC_FIELDS and value is not None and not isinstance(value, fits.card.Undefined)
           and (isinstance(value, bool) or not isinstance(value, (int, float)))]
    if bad:
        raise HeaderValueError(
            f"not a number: {', '.join(bad)}; correct the header in a copy of the file (raw files are never "
            "changed here) or move the file out of the raw directory")


@dataclass
class ScanResult:
    frames: list[RawFrame]
    unreadable: list[tuple[str, str]]  # (path, reason)


def is_raw_name(path: Path) -> bool:
    return path.name.endswith(RAW_SUFFIXES)


def live_ifus(path: Path) -> list[int]:
    """IFU numbers of the CHANnn extensions that hold data (``ESO DET CHIP LIVE`` not false).

    Reads extension headers only (no pixel data): astropy loads data lazily.
    """
    ifus = []
    with fits.open(path, lazy_load_hdus=True) as hdul:
        for hdu in hdul[1:]:
            name = str(hdu.header.get("EXTNAME", ""))
            if name.startswith("CHAN") and name[4:].isdigit():
                if hdu.header.get("HIERARCH ESO DET CHIP LIVE", True) and hdu.header.get("NAXIS", 0) == 2:
                    ifus.append(int(name[4:]))
    return ifus


def read_frame(path: Path, with_ifus: bool = False) -> RawFrame:
    """One file's primary header as a RawFrame (``with_ifus`` also lists its live CHANnn extensions)."""
    header = fits.getheader(path, ext=0)
    frame = RawFrame.from_header(str(path), header)
    if with_ifus:
        frame.ifus = live_ifus(path)
    return frame


def scan(paths_or_dir: str | os.PathLike | Iterable[Path], with_ifus: bool = False) -> ScanResult:
    """Read every raw FITS file (sorted by path) under a directory, or the given files.

    A directory may be given as ``str`` too (iterating a string would read its characters as paths).
    """
    if isinstance(paths_or_dir, (str, os.PathLike)):
        paths_or_dir = Path(paths_or_dir)
        if not paths_or_dir.is_dir():
            raise NotADirectoryError(f"raw directory {paths_or_dir} does not exist or is not a directory")
        paths = sorted(p for p in paths_or_dir.rglob("*") if p.is_file() and is_raw_name(p))
    else:
        paths = sorted(paths_or_dir)
    frames, unreadable = [], []
    for path in paths:
        try:
            frames.append(read_frame(path, with_ifus))
        except (OSError, ValueError, TypeError) as exc:
            unreadable.append((str(path), f"{exc.__class__.__name__}: {exc}"))
    return ScanResult(frames, unreadable)
