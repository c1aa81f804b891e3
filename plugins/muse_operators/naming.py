"""MUSEreduce-compatible names of exposures, pointings and OB folders.

The names are folder names under ``reduced/`` and the identifiers users write in ``global.exp_list``
(MUSEreduce's ``dither_collect.user_list``), so they follow MUSEreduce exactly:

* ``RADEC`` (13 characters): header RA/DEC (degrees) as FK5 sexagesimal at whole-second precision with
  the separators removed, ``HHMMSS`` then a signed ``DDMMSS``, e.g. ``102400-574536`` for RA 156.0,
  Dec -57.76. It is what ``SkyCoord(ra, dec, unit='deg', frame='fk5').to_string('hmsdms', sep='',
  precision=0)`` gives with the blank removed. Quirks of that call, kept for compatibility (astropy 8.0.2):

  - the sign is always written: ``+000000`` for Dec 0.0, ``-000000`` for Dec -0.0001 and for -0.0;
    Dec -0.5 gives ``-003000``;
  - RA is rounded after wrapping into [0h, 24h), so RA 359.9999 deg gives ``240000`` (not ``000000``,
    which RA 0.0 or 360.0 gives): the same sky position can have two RADEC strings;
  - Dec is rounded to the arcsecond: a dither of 1 arcsec or RA of 1 s (15 arcsec cos Dec) changes it.

* exposure ``RADEC_EEEE_RRR_NN``: ``EEEE`` is ``int(EXPTIME)`` zero-padded to 4 digits (truncated, as
  MUSEreduce does), ``RRR`` is ``int(ESO INS DROT POSANG)`` zero-padded to 3 digits, ``NN`` a counter
  zero-padded to 2 digits (see :mod:`muse_operators.grouping` for how it is counted), e.g.
  ``180431-242316_0860_090_01``. Wider values are written in full (``12000`` s, counter ``100``).
* pointing ``RADEC_EEEE``, e.g. ``091315-403023_2800``.

Every name uses only ``0-9``, ``+``, ``-`` and ``_``: safe on every file system and in shell words.
OB folder names come from free text (``ESO OBS NAME``) and are made safe by :func:`folder_name`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from astropy.coordinates import SkyCoord

#: An exposure identifier, as written in ``global.exp_list``.
EXPOSURE_NAME_RE = re.compile(r"^(?P<radec>\d{6}[+-]\d{6})_(?P<exptime>\d{4,})_(?P<rot>-?\d{2,})_(?P<counter>\d{2,})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_LEADING = re.compile(r"^[._+-]+")


def radec_string(ra_deg: float, dec_deg: float) -> str:
    """The 13-character ``HHMMSS±DDMMSS`` position string MUSEreduce puts in every name.

    Computed by the same astropy call as MUSEreduce (not re-implemented) so the rounding agrees with
    folder names an existing MUSEreduce reduction produced.
    """
    return radec_strings([ra_deg], [dec_deg])[0]


def radec_strings(ras_deg: Sequence[float], decs_deg: Sequence[float]) -> list[str]:
    """:func:`radec_string` of many positions in one astropy call (about 1 ms per position saved)."""
    if not len(ras_deg):
        return []
    coords = SkyCoord(list(ras_deg), list(decs_deg), unit="deg", frame="fk5")
    return ["".join(text.split()) for text in coords.to_string("hmsdms", sep="", precision=0)]


def _int_field(value: float, what: str) -> int:
    """``int(value)`` as MUSEreduce truncates it, refusing values that cannot name a folder."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return int(number)


def pointing_name(radec: str, exptime: float) -> str:
    """``RADEC_EEEE``: the folder where the exposures of one pointing are collected and combined."""
    seconds = _int_field(exptime, "EXPTIME")
    if seconds < 0:
        raise ValueError(f"EXPTIME must not be negative, got {exptime!r}")
    return f"{radec}_{seconds:04d}"


def exposure_name(radec: str, exptime: float, posang: float, counter: int) -> str:
    """``RADEC_EEEE_RRR_NN``: one exposure's folder and its identifier in ``global.exp_list``."""
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
        raise ValueError(f"the exposure counter must be an int >= 0, got {counter!r}")
    rot = _int_field(posang, "ESO INS DROT POSANG")
    return f"{pointing_name(radec, exptime)}_{rot:03d}_{counter:02d}"


def folder_name(text: str) -> str:
    """``text`` made safe as one folder name: runs of other characters become ``_``.

    Keeps letters, digits, ``.``, ``_``, ``+`` and ``-``, so ESO OB names such as ``WFM-AO-NGC6530---tile-1``
    are unchanged. Strips leading ``.``, ``_``, ``+``, ``-`` and trailing ``_``, so the result is never hidden,
    ``.``/``..``, or read as a command option. Returns ``""`` when nothing usable is left; the caller then
    falls back to another name (the OBS ID).
    """
    return _LEADING.sub("", _UNSAFE.sub("_", text.strip())).rstrip("_")
