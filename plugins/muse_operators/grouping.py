"""Group science frames into OBs, exposures and pointings, named as MUSEreduce names them.

Decisions (``describe()`` prints each one per OB, exposure and pointing):

* **OB**: the frames of one ``ESO OBS ID`` (``ESO OBS NAME`` if the ID is missing), named after the OBS NAME
  made folder-safe (the ID if no usable name). OBs sharing a name but not an OBS ID are *all* named
  ``NAME_OBSID``, as a bare shared name would be ambiguous in ``global.OB_list``. STD frames are calibrations.
* **Counter NN** of ``RADEC_EEEE_RRR_NN``: position in time order (MJD-OBS, ties by ARCFILE, then path) among
  the OB's OBJECT and SKY exposures with the same ``RADEC_EEEE_RRR``. MUSEreduce used glob order (bug 10);
  time order is independent of file names and listing order. Counting *per OB* (as MUSEreduce's per-OB
  folders do) means frames of other OBs added later (another night or program) never rename an exposure;
  only a late-arriving frame of the *same* OB can shift its counters. Names are unique within an OB; across
  OBs, :attr:`Exposure.qualified_name` (``OB/NAME``) is.
* **Pointing** ``RADEC_EEEE`` (the combining folder): MUSEreduce groups equal RADEC_EEEE, so a dither of 1
  arcsec in Dec or 1 s in RA splits a field into several "pointings". Here an OBJECT exposure joins the
  nearest pointing of its scope (one OB, or the OBs given to :func:`combine_obs`) with the same ``ESO INS
  MODE`` and int(EXPTIME) whose *first* exposure lies within ``radius_arcsec`` (default 60, a tenth of the
  WFM field), else it starts a pointing named after itself. Anchoring on the first exposure (not
  friends-of-friends) stops a chain of dithers from merging distant fields. ``radius_arcsec=None`` gives
  MUSEreduce's exact-name grouping. SKY exposures are sky references, never combined: no pointing.
"""
from __future__ import annotations

from functools import cached_property

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from astropy.coordinates import angular_separation

from .classify import classify
from .errors import MuseAirflowError
from .headers import RawFrame
from .naming import EXPOSURE_NAME_RE, exposure_name, folder_name, radec_strings

SCIENCE_TAGS = ("OBJECT", "SKY")
_REQUIRED = {"mjd_obs": "MJD-OBS", "ra": "RA", "dec": "DEC", "exptime": "EXPTIME", "posang": "ESO INS DROT POSANG"}


class GroupingError(MuseAirflowError, ValueError):
    """Science frames or a grouping setting that cannot be turned into well-defined OBs and exposures."""


def _checked(value: float | None) -> float:
    """A header value of a science frame: :func:`_science` refused every frame without it (see _REQUIRED)."""
    if value is None:
        raise GroupingError("a science frame lost a required header value after it was checked (a bug)")
    return value


@dataclass(frozen=True)
class Exposure:
    """One OBJECT or SKY frame: identifier, pointing within its own OB (None for SKY), why it is so named."""

    frame: RawFrame
    tag: str
    name: str
    pointing: str | None
    ob: str
    reason: str = ""

    @property
    def qualified_name(self) -> str:
        """``OB/NAME``: unique across OBs (the same field in two OBs gets the same ``name``)."""
        return f"{self.ob}/{self.name}"

    @property
    def exptime_s(self) -> int:
        return int(_checked(self.frame.exptime))


@dataclass(frozen=True)
class Pointing:
    """OBJECT exposures combined into one cube, in time order, each with why it belongs here."""

    name: str
    members: tuple[tuple[Exposure, str], ...]

    @property
    def exposures(self) -> tuple[Exposure, ...]:
        return tuple(e for e, _ in self.members)

    @property
    def obs(self) -> tuple[str, ...]:
        """Names of the contributing OBs, in order of their first exposure here."""
        return tuple(dict.fromkeys(e.ob for e in self.exposures))

    def describe(self) -> list[str]:
        head = f"pointing {self.name}: {len(self.members)} exposure(s) from OB(s) {', '.join(self.obs)}"
        return [head] + [f"  {e.qualified_name}: {why}" for e, why in self.members]


@dataclass(frozen=True)
class ObservingBlock:
    """The science exposures of one OB, in time order, and its pointings."""

    key: str
    name: str
    obs_id: int | None
    obs_name: str | None
    exposures: tuple[Exposure, ...]
    pointings: tuple[Pointing, ...] = ()
    name_reason: str = ""

    @property
    def first_mjd(self) -> float:
        return float(_checked(self.exposures[0].frame.mjd_obs))

    def describe(self) -> list[str]:
        lines = [f"OB {self.name} ({self.key}, OBS NAME {self.obs_name!r}): {self.name_reason}"]
        lines += [f"  {e.name} {e.tag:6} {e.frame.date_obs} {e.frame.path}: {e.reason}" for e in self.exposures]
        return lines + [f"  {line}" for p in self.pointings for line in p.describe()]


@dataclass(frozen=True)
class Selection:
    """Exposures kept by ``global.exp_list`` / ``global.using_specific_exposure_time``, and why others were not."""

    exposures: tuple[Exposure, ...]
    dropped: tuple[tuple[Exposure, str], ...] = ()

    @cached_property
    def kept_names(self) -> frozenset[str]:
        """Qualified names of the kept exposures (computed once: restrict() is called per OB)."""
        return frozenset(e.qualified_name for e in self.exposures)

    def restrict(self, pointings: Iterable[Pointing]) -> list[Pointing]:
        """The pointings with only the kept exposures; pointings left empty are left out."""
        kept = self.kept_names
        restricted = (Pointing(p.name, tuple(m for m in p.members if m[0].qualified_name in kept)) for p in pointings)
        return [p for p in restricted if p.members]

    def describe(self) -> list[str]:
        return [f"keep {e.qualified_name} ({e.tag})" for e in self.exposures] + [
            f"drop {e.qualified_name} ({e.tag}): {why}" for e, why in self.dropped]


def _time_key(frame: RawFrame) -> tuple[float, str, str]:
    """Time order, with ties broken by the header's ARCFILE before the (renameable) local path."""
    return (float(_checked(frame.mjd_obs)), frame.arcfile or "", frame.path)


def _science(frames: Iterable[RawFrame]) -> list[tuple[RawFrame, str]]:
    """OBJECT/SKY frames in time order; every unusable one is reported at once (never skipped)."""
    pairs = [(f, tag) for f in frames if (tag := classify(f).tag) in SCIENCE_TAGS]
    problems = [f"{f.path}: {tag} frame without {kw}" for f, tag in pairs
                for attr, kw in _REQUIRED.items() if getattr(f, attr) is None]
    paths = defaultdict(list)
    for f, _ in pairs:
        paths[f.arcfile or f.path].append(f.path)
    problems += [f"ARCFILE {a} is in the raw data {len(p)} times ({', '.join(sorted(p))}): keep one copy"
                 for a, p in paths.items() if len(p) > 1]
    if problems:
        raise GroupingError("cannot name the science exposures:\n  " + "\n  ".join(problems))
    return sorted(pairs, key=lambda pair: _time_key(pair[0]))


def _ob_key(f: RawFrame) -> str:
    return f"OBS ID {f.obs_id}" if f.obs_id is not None else f"OBS NAME {f.obs_name!r}" if f.obs_name else "no OB"


def _ob_names(first: dict[str, RawFrame]) -> dict[str, tuple[str, str]]:
    """OB key -> (unique folder name, why); ``NAME_OBSID`` for every OB whose name another OBS ID has too."""
    base = {}
    for key, f in first.items():
        safe = folder_name(str(f.obs_name or ""))
        if safe:
            base[key] = (safe, "named after OBS NAME" + ("" if safe == f.obs_name else " (made folder-safe)"))
        else:
            base[key] = (str(f.obs_id) if f.obs_id is not None else "unknown_OB", "no usable OBS NAME")
    by_name: dict[str, list[str]] = defaultdict(list)
    for key, (name, _) in base.items():
        by_name[name].append(key)
    ids_by_name = {name: sorted(str(first[k].obs_id) for k in keys) for name, keys in by_name.items()}
    names = {}
    for key, (name, why) in base.items():
        own = str(first[key].obs_id)
        shared = ids_by_name[name]
        if len(shared) > 1 and first[key].obs_id is not None:
            others = [i for i in shared[:6] if i != own][:5]  # linear even when thousands share a name
            more = f" and {len(shared) - 1 - len(others)} more" if len(shared) - 1 > len(others) else ""
            name, why = f"{name}_{own}", f"{why}, OBS ID appended (OBS ID {', '.join(others)}{more} too)"
        names[key] = (name, why)
    clashes = sorted(n for n, c in Counter(n for n, _ in names.values()).items() if c > 1)
    if clashes:
        raise GroupingError(f"OBs {clashes} cannot be told apart: their OBS NAMEs give one folder name and they "
                            "carry no OBS ID; give the frames distinct ESO OBS NAME or ESO OBS ID")
    return names


def _cluster(exposures: Sequence[Exposure], radius_arcsec: float | None) -> list[Pointing]:
    """Pointings of OBJECT exposures given in time order (rules in the module docstring)."""
    if radius_arcsec is not None and not radius_arcsec > 0:
        raise GroupingError(f"pointing radius must be > 0 arcsec or None (MUSEreduce grouping), not {radius_arcsec!r}")
    if not exposures:
        return []
    ra = np.radians([_checked(e.frame.ra) for e in exposures])
    dec = np.radians([_checked(e.frame.dec) for e in exposures])
    own = [e.name.rsplit("_", 2)[0] for e in exposures]  # RADEC_EEEE of RADEC_EEEE_RRR_NN
    groups: list[tuple[str, int, list[tuple[Exposure, str]]]] = []  # name, index of first exposure, members
    for i, e in enumerate(exposures):
        if radius_arcsec is None:
            near = [(0.0, g) for g in groups if own[g[1]] == own[i]]
        else:
            cands = [g for g in groups if exposures[g[1]].frame.ins_mode == e.frame.ins_mode
                     and exposures[g[1]].exptime_s == e.exptime_s]
            anchors = [g[1] for g in cands]
            seps = np.degrees(angular_separation(ra[i], dec[i], ra[anchors], dec[anchors])) * 3600.0
            near = sorted(((float(s), g) for s, g in zip(seps, cands, strict=True) if s <= radius_arcsec),
                          key=lambda t: t[0])
        if near:
            sep, (_, first, members) = near[0]
            members.append((e, "same RADEC_EXPTIME (MUSEreduce grouping)" if radius_arcsec is None else
                            f"{sep:.1f} arcsec from first exposure {exposures[first].qualified_name} "
                            f"(<= {radius_arcsec:g}), same INS MODE and EXPTIME"))
            continue
        why = "first exposure, pointing named after it" + ("" if radius_arcsec is None else f"; no pointing with "
              f"INS MODE {e.frame.ins_mode}, EXPTIME {e.exptime_s} s within {radius_arcsec:g} arcsec")
        taken = {g[0] for g in groups}  # a name is taken only by another INS MODE, or with a radius < 1 arcsec
        name = own[i] if own[i] not in taken else f"{own[i]}_{folder_name(str(e.frame.ins_mode))}"
        groups.append((name if name not in taken else f"{name}_{i}", i, [(e, why)]))
    return [Pointing(name, tuple(members)) for name, _, members in groups]


def _name_exposures(pairs: list[tuple[RawFrame, str]], ob: str, radec_of: dict[str, str]) -> list[Exposure]:
    """Exposures of one OB (pairs in time order), counted per RADEC_EEEE_RRR; ``radec_of``: path -> RADEC."""
    radecs = [radec_of[f.path] for f, _ in pairs]
    prefixes = [exposure_name(r, _checked(f.exptime), _checked(f.posang), 0)[:-3]
                for r, (f, _) in zip(radecs, pairs, strict=True)]
    totals, seen = Counter(prefixes), Counter[str]()
    result = []
    for (f, tag), radec, prefix in zip(pairs, radecs, prefixes, strict=True):
        n = seen[prefix]
        seen[prefix] += 1
        eeee, rrr = prefix[len(radec) + 1:].split("_", 1)
        why = (f"RA {f.ra:.6f} Dec {f.dec:.6f} -> {radec}, EXPTIME {f.exptime} -> {eeee}, POSANG {f.posang} -> "
               f"{rrr}; counter {n:02d}: number {n + 1} of {totals[prefix]} with {prefix} in OB {ob} by MJD-OBS")
        result.append(Exposure(f, tag, f"{prefix}_{n:02d}", None, ob, why))
    return result


def group_science(frames: Iterable[RawFrame], radius_arcsec: float | None = 60.0) -> list[ObservingBlock]:
    """The OBs of the OBJECT and SKY frames among ``frames`` (others ignored), sorted by first MJD-OBS."""
    by_key: dict[str, list[tuple[RawFrame, str]]] = defaultdict(list)
    for frame, tag in _science(frames):
        by_key[_ob_key(frame)].append((frame, tag))
    names = _ob_names({key: pairs[0][0] for key, pairs in by_key.items()})
    every = [f for pairs in by_key.values() for f, _ in pairs]
    radecs = radec_strings([_checked(f.ra) for f in every], [_checked(f.dec) for f in every])
    radec_of = dict(zip((f.path for f in every), radecs, strict=True))
    blocks = []
    for key, pairs in by_key.items():
        name, why = names[key]
        named = _name_exposures(pairs, name, radec_of)  # one astropy call for the pool, not one per OB
        pointings = _cluster([e for e in named if e.tag == "OBJECT"], radius_arcsec)
        of = {e.name: p.name for p in pointings for e in p.exposures}
        exposures = {e.name: Exposure(e.frame, e.tag, e.name, of.get(e.name), e.ob, e.reason) for e in named}
        pointings = [Pointing(p.name, tuple((exposures[e.name], r) for e, r in p.members)) for p in pointings]
        first = pairs[0][0]
        blocks.append(ObservingBlock(key, name, first.obs_id, first.obs_name, tuple(exposures.values()),
                                     tuple(pointings), why))
    return sorted(blocks, key=lambda ob: (ob.first_mjd, ob.name))


def auto_create_ob_list(obs: Iterable[ObservingBlock]) -> list[str]:
    """``global.auto_create_OB_folders``: every OB with science frames, by first MJD-OBS."""
    return [ob.name for ob in sorted((ob for ob in obs if ob.exposures), key=lambda ob: (ob.first_mjd, ob.name))]


def _listing(names: Iterable[str], limit: int = 40) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def _resolve_obs(obs: Sequence[ObservingBlock], ob_list: Sequence[str | int]) -> list[ObservingBlock]:
    """``global.OB_list`` entries -> OBs, by folder name, OBS ID, or an OBS NAME that only one OB has."""
    found: dict[str, tuple[str, ObservingBlock]] = {}  # OB key -> (entry, OB)
    problems: list[str] = []
    for entry in map(str, ob_list):
        hits = ([ob for ob in obs if ob.name == entry] or [ob for ob in obs if str(ob.obs_id) == entry]
                or [ob for ob in obs if ob.obs_name == entry])
        if len(hits) > 1:
            problems.append(f"{entry!r} is the OBS NAME of OBs {', '.join(ob.name for ob in hits)}: list those meant")
        elif not hits:
            problems.append(f"{entry!r} is not an OB with science frames")
        elif hits[0].key in found:
            problems.append(f"{entry!r} is OB {hits[0].name}, already listed as {found[hits[0].key][0]!r}")
        else:
            found[hits[0].key] = (entry, hits[0])
    if problems:
        valid = _listing(f"{ob.name} (OBS ID {ob.obs_id})" for ob in obs)
        raise GroupingError("global.OB_list: " + "; ".join(problems) + f". Valid OBs: {valid}")
    return sorted((ob for _, ob in found.values()), key=lambda ob: (ob.first_mjd, ob.name))


def select_obs(obs: Sequence[ObservingBlock], ob_list: Sequence[str | int] | None) -> list[ObservingBlock]:
    """The OBs ``global.OB_list`` names (every OB when it is empty), with their SKY exposures."""
    return _resolve_obs(obs, ob_list) if ob_list else list(obs)


def combine_obs(obs: Iterable[ObservingBlock], ob_list: Sequence[str | int],
                radius_arcsec: float | None = 60.0) -> list[Pointing]:
    """``global.dither_multiple_OBs``: pointings across the OBs of ``global.OB_list`` (see Selection.restrict)."""
    obs = list(obs)
    if not ob_list:
        raise GroupingError("global.dither_multiple_OBs needs global.OB_list: list the OBs to combine, from "
                            f"{_listing(ob.name for ob in obs)} (global.auto_create_OB_folders lists all of them)")
    exposures = [e for ob in _resolve_obs(obs, ob_list) for e in ob.exposures if e.tag == "OBJECT"]
    return _cluster(sorted(exposures, key=lambda e: _time_key(e.frame)), radius_arcsec)


def _exposure_seconds(value: float | bool | None) -> int | None:
    """``global.using_specific_exposure_time`` in whole seconds; None/False mean every exposure time."""
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < 1e9 and value == int(value)):
        raise GroupingError(f"global.using_specific_exposure_time = {value!r}: give false or a whole number of "
                            "seconds > 0 (names carry int(EXPTIME), e.g. 860)")
    return int(value)


def select_exposures(obs: ObservingBlock | Iterable[ObservingBlock], exp_list: Sequence[str] | None = None,
                     exposure_time: float | bool | None = None) -> Selection:
    """Keep the OBJECT exposures named in ``global.exp_list`` and/or of one exposure time.

    The time is matched exactly on int(EXPTIME): MUSEreduce's ``*EEEE*`` glob also matched RADEC digits.
    SKY exposures are always kept: they are the sky of the kept objects. ``exp_list`` entries are ``NAME``,
    or ``OB/NAME`` where two OBs have an exposure of that name.
    """
    blocks = [obs] if isinstance(obs, ObservingBlock) else list(obs)
    pool = [e for ob in blocks for e in ob.exposures]
    seconds = _exposure_seconds(exposure_time)
    wanted = _resolve_exp_list(pool, exp_list, seconds) if exp_list else None
    kept, dropped = [], []
    for e in pool:
        if e.tag == "OBJECT" and seconds is not None and e.exptime_s != seconds:
            dropped.append((e, f"EXPTIME {e.frame.exptime} s, not global.using_specific_exposure_time = {seconds}"))
        elif e.tag == "OBJECT" and wanted is not None and e.qualified_name not in wanted:
            dropped.append((e, "not in global.exp_list"))
        else:
            kept.append(e)
    if seconds is not None and not any(e.tag == "OBJECT" for e in kept):
        times = sorted({e.exptime_s for e in pool if e.tag == "OBJECT"})
        raise GroupingError(f"global.using_specific_exposure_time = {exposure_time!r} matches no OBJECT exposure "
                            f"of OB(s) {', '.join(ob.name for ob in blocks)}: their exposure times are {times} s")
    return Selection(tuple(kept), tuple(dropped))


def _resolve_exp_list(pool: list[Exposure], exp_list: Sequence[str], seconds: int | None) -> set[str]:
    """``global.exp_list`` entries -> qualified names; every bad entry is reported at once."""
    problems, wanted = [], set()
    for entry in exp_list:
        hits = [e for e in pool if entry in (e.name, e.qualified_name)]
        if not hits:
            form = "/" in entry or EXPOSURE_NAME_RE.match(entry)
            problems.append(f"{entry!r} is unknown" + ("" if form else " (not RADEC_EXPTIME_ROTANGLE_COUNTER)"))
        elif len(hits) > 1:
            problems.append(f"{entry!r} is in several OBs: write one of {', '.join(e.qualified_name for e in hits)}")
        elif hits[0].tag != "OBJECT":
            problems.append(f"{entry!r} is a SKY exposure: always reduced as sky, never combined")
        elif seconds is not None and hits[0].exptime_s != seconds:
            problems.append(f"{entry!r} has EXPTIME {hits[0].frame.exptime} s, excluded by "
                            f"global.using_specific_exposure_time = {seconds}")
        else:
            wanted.add(hits[0].qualified_name)
    if problems:
        names = Counter(e.name for e in pool)
        valid = _listing(e.name if names[e.name] == 1 else e.qualified_name for e in pool if e.tag == "OBJECT")
        raise GroupingError("global.exp_list (MUSEreduce dither_collect.user_list): " + "; ".join(problems)
                            + f". Valid OBJECT exposures: {valid}")
    return wanted


def describe(obs: Iterable[ObservingBlock]) -> list[str]:
    """Every grouping decision, OB by OB, as printable lines."""
    return [line for ob in obs for line in ob.describe()]
