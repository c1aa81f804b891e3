"""Associate calibrations to exposures by header rules equivalent to ESO's OCA rules.

``reflex/muse_wkf.oca`` (pipeline 2.8.7) decides which calibration a recipe gets from header keywords:
the same readout (``DET.READ.CURNAME``) everywhere, the same ``INS.MODE`` for mode-dependent
calibrations, and a time window per calibration type (±3 d bias/flat/arc, ±5 d dark, ±30 d twilight,
±1 d ILLUM for science). Within the window the nearest in time wins. This module applies the same rules
to *raw* calibration templates (one ``TPL.START`` = one set, as the OCA groups them) and to ESO-delivered
*masters* (``PRO.CATG``), and says for every choice which rule chose it and how good the match is:

* ``good``     — every matching keyword equal and inside the OCA window;
* ``fallback`` — no candidate inside the window; the nearest matching one outside it is used (named);
* ``missing``  — nothing matches; an error for required calibrations, a note for optional ones.

ILLUM (the attached illumination flat) follows MUSERED's reasoning: the slice illumination moves with the
instrument temperature, so among the ILLUMs of the same night within ``illum_hours`` of the exposure the
one with the closest ``INS.TEMP7.VAL`` is taken, the nearest in time if temperatures are missing.
This replaces MUSEreduce's ±1-day windows over everything and "last file in glob order wins".
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ..classify import classify
from ..headers import RawFrame

GOOD, FALLBACK, MISSING = "good", "fallback", "missing"


@dataclass(frozen=True)
class Rule:
    """How one calibration type is matched to an exposure (one row of the OCA association table)."""

    tag: str
    same_mode: bool  # INS.MODE must be equal
    window_days: float | None  # OCA window; None: no time limit (nearest wins)
    required: bool
    fallback_days: float | None = None  # accept beyond the window up to this, as FALLBACK
    min_frames: int = 1


# Raw calibration templates for an exposure, reduced by own calibrations (MUSEreduce's calibration step).
RAW_RULES: dict[str, Rule] = {
    "BIAS": Rule("BIAS", False, 3.0, True, fallback_days=30.0, min_frames=3),
    "DARK": Rule("DARK", False, 5.0, False, min_frames=3),
    "FLAT": Rule("FLAT", True, 3.0, True, fallback_days=30.0, min_frames=3),
    "ARC": Rule("ARC", True, 3.0, True, fallback_days=30.0),
    "SKYFLAT": Rule("SKYFLAT", True, 30.0, False, fallback_days=90.0, min_frames=3),
    # A standard from another night is a fallback up to 60 d; beyond, ESO's master STD_RESPONSE is the tool.
    "STD": Rule("STD", True, 1.0, False, fallback_days=60.0),
}

# ESO master calibrations (using_ESO_calibration), by PRO.CATG, from the OCA's science/sky/standard rules.
MASTER_RULES: dict[str, Rule] = {
    "MASTER_BIAS": Rule("MASTER_BIAS", False, 3.0, True, fallback_days=30.0),
    "MASTER_DARK": Rule("MASTER_DARK", False, 5.0, False),
    "MASTER_FLAT": Rule("MASTER_FLAT", True, 3.0, True, fallback_days=30.0),
    "TRACE_TABLE": Rule("TRACE_TABLE", True, 3.0, True, fallback_days=30.0),
    "WAVECAL_TABLE": Rule("WAVECAL_TABLE", True, 3.0, True, fallback_days=30.0),
    "TWILIGHT_CUBE": Rule("TWILIGHT_CUBE", True, 30.0, False, fallback_days=90.0),
    "LSF_PROFILE": Rule("LSF_PROFILE", True, None, True),
    "STD_RESPONSE": Rule("STD_RESPONSE", True, None, False),
    "STD_TELLURIC": Rule("STD_TELLURIC", True, 1.0, False, fallback_days=None),
    "ASTROMETRY_WCS": Rule("ASTROMETRY_WCS", True, None, False),
}


@dataclass(frozen=True)
class CalibrationSet:
    """Frames that a recipe combines: one raw template (same TPL.START) or one master product."""

    tag: str
    frames: tuple[RawFrame, ...]
    mjd: float = field(init=False, compare=False)  # mean MJD-OBS, computed once (compared millions of times)

    def __post_init__(self) -> None:
        values = [f.mjd_obs for f in self.frames if f.mjd_obs is not None]
        object.__setattr__(self, "mjd", sum(values) / len(values) if values else float("nan"))

    @property
    def key(self) -> str:
        return str(self.frames[0].tpl_start or self.frames[0].date_obs or self.frames[0].path)

    @property
    def ins_mode(self) -> str | None:
        return self.frames[0].ins_mode

    @property
    def read_curname(self) -> str | None:
        return self.frames[0].read_curname

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.frames]


@dataclass(frozen=True)
class Choice:
    """The calibration chosen for one tag, with the reason a person can check."""

    tag: str
    quality: str
    reason: str
    chosen: CalibrationSet | None = None
    rejected: tuple[str, ...] = ()  # why other candidates were not taken

    @property
    def paths(self) -> list[str]:
        return self.chosen.paths if self.chosen else []


@dataclass
class Association:
    """Every choice for one exposure; ``errors`` lists required calibrations that are missing."""

    exposure: RawFrame
    choices: dict[str, Choice] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return [c.reason for c in self.choices.values() if c.quality == MISSING and _required(c.tag)]

    def describe(self) -> list[str]:
        lines = [f"{self.exposure.path}:"]
        for tag, choice in self.choices.items():
            lines.append(f"  {tag:<14} [{choice.quality}] {choice.reason}")
        return lines


def _required(tag: str) -> bool:
    rule = RAW_RULES.get(tag) or MASTER_RULES.get(tag)
    return bool(rule and rule.required)


def calibration_sets(frames: Iterable[RawFrame]) -> dict[str, list[CalibrationSet]]:
    """Group classified raw calibration frames into templates by (tag, TPL.START); masters one by one.

    Per-IFU masters of one product (same PRO.CATG and DATE-OBS, e.g. ``MASTER_BIAS-01..24``) form one set.
    """
    groups: dict[tuple[str, str], list[RawFrame]] = defaultdict(list)
    for frame in frames:
        tag = classify(frame).tag
        if tag is None or tag in {"OBJECT", "SKY"}:
            continue
        if frame.pro_catg:
            key = str(frame.date_obs or frame.mjd_obs or frame.path)
        elif tag in {"ILLUM", "STD"}:
            key = frame.path  # single-exposure calibrations: one frame is one choice
        else:
            key = str(frame.tpl_start or frame.date_obs)
        groups[(tag, key)].append(frame)
    sets: dict[str, list[CalibrationSet]] = defaultdict(list)
    for (tag, _), members in sorted(groups.items()):
        members.sort(key=lambda f: (f.mjd_obs or 0.0, f.path))
        sets[tag].append(CalibrationSet(tag, tuple(members)))
    return {tag: TimeSorted(members) for tag, members in sets.items()}  # by time: choose() bisects


MAX_REJECTED_NOTES = 8  # a choice explains itself with its nearest rivals, not with the whole archive


class TimeSorted(list):
    """Calibration sets sorted by mean MJD, with their times kept for binary search."""

    def __init__(self, sets: Iterable[CalibrationSet] = ()) -> None:
        super().__init__(sorted(sets, key=lambda c: (c.mjd, c.key)))
        self.times = [c.mjd for c in self]


def _time_sorted(candidates: Sequence[CalibrationSet]) -> TimeSorted:
    return candidates if isinstance(candidates, TimeSorted) else TimeSorted(candidates)


def _nearest_first(candidates: TimeSorted, mjd: float, limit: float | None) -> Iterator[CalibrationSet]:
    """Candidates within ±``limit`` days of ``mjd`` (all if None), nearest first: a two-pointer walk out
    from the bisection point, so choosing among thousands of templates stops at the first usable one."""
    right = bisect.bisect_left(candidates.times, mjd)
    left = right - 1
    while left >= 0 or right < len(candidates):
        take_left = right >= len(candidates) or (
            left >= 0 and mjd - candidates.times[left] <= candidates.times[right] - mjd)
        index = left if take_left else right
        if limit is not None and abs(candidates.times[index] - mjd) > limit:
            if take_left:
                left = -1
            else:
                right = len(candidates)
            continue
        yield candidates[index]
        if take_left:
            left -= 1
        else:
            right += 1


def _mismatch(exposure: RawFrame, rule: Rule, cand: CalibrationSet) -> str | None:
    """Why ``cand`` cannot serve ``exposure`` under ``rule`` (None if it can)."""
    if exposure.read_curname and cand.read_curname and cand.read_curname != exposure.read_curname:
        return f"{cand.key}: DET.READ.CURNAME {cand.read_curname} != {exposure.read_curname}"
    if rule.same_mode and cand.ins_mode != exposure.ins_mode:
        return f"{cand.key}: INS.MODE {cand.ins_mode} != {exposure.ins_mode}"
    if len(cand.frames) < rule.min_frames:
        return f"{cand.key}: {len(cand.frames)} frames, the recipe needs >= {rule.min_frames}"
    return None


def choose(exposure: RawFrame, rule: Rule, candidates: Sequence[CalibrationSet]) -> Choice:
    """Apply one rule: the nearest candidate in time whose readout and mode match (and that is big enough),
    rated by the OCA window; the nearer candidates that did not match are kept as the reasons why."""
    ordered = _time_sorted(candidates)
    mjd = exposure.mjd_obs or 0.0
    rejected: list[str] = []
    best = None
    for cand in _nearest_first(ordered, mjd, rule.fallback_days):
        reason = _mismatch(exposure, rule, cand)
        if reason is None:
            best = cand
            break
        if len(rejected) < MAX_REJECTED_NOTES:
            rejected.append(reason)
    if best is None:
        in_reach = bool(rejected) or not ordered
        if not in_reach:
            nearest = next(_nearest_first(ordered, mjd, None))
            return Choice(rule.tag, MISSING, f"nearest {rule.tag} ({nearest.key}) is {abs(nearest.mjd - mjd):.1f} d "
                          f"away, beyond ±{rule.fallback_days:g} d")
        what = "required" if rule.required else "optional"
        reason = f"no {rule.tag} with matching {'INS.MODE and ' if rule.same_mode else ''}readout ({what})"
        return Choice(rule.tag, MISSING, reason, None, tuple(rejected))
    delta = abs(best.mjd - mjd)
    matched = "INS.MODE, readout" if rule.same_mode else "readout"
    if rule.window_days is None or delta <= rule.window_days:
        window = "no time limit" if rule.window_days is None else f"within ±{rule.window_days:g} d"
        return Choice(rule.tag, GOOD, f"{best.key}: nearest {matched} match, Δt {delta:.2f} d ({window})", best,
                      tuple(rejected))
    return Choice(rule.tag, FALLBACK,
                  f"{best.key}: nearest {matched} match is {delta:.2f} d away, outside the OCA window "
                  f"of ±{rule.window_days:g} d", best, tuple(rejected))


def choose_illum(exposure: RawFrame, candidates: Sequence[CalibrationSet], illum_hours: float = 2.0,
                 window_days: float = 1.0) -> Choice:
    """The ILLUM flat: same readout, within ±1 d; prefer ±``illum_hours``, then the closest INS.TEMP7."""
    mjd = exposure.mjd_obs or 0.0
    reach = list(_nearest_first(_time_sorted(candidates), mjd, window_days))
    same_readout = [c for c in reach if not exposure.read_curname or c.read_curname in (None, exposure.read_curname)]
    in_window = [c for c in same_readout if abs(c.mjd - mjd) <= window_days]
    if not in_window:
        return Choice("ILLUM", MISSING, f"no ILLUM within ±{window_days:g} d (optional; slice illumination "
                      "is then not corrected for temperature changes)")
    near = [c for c in in_window if abs(c.mjd - mjd) * 24.0 <= illum_hours]
    temp = exposure.ins_temp7
    temps = [c.frames[0].ins_temp7 for c in near]
    if near and temp is not None and all(t is not None for t in temps):
        best = min(near, key=lambda c: (abs((c.frames[0].ins_temp7 or 0.0) - temp), abs(c.mjd - mjd)))
        return Choice("ILLUM", GOOD,
                      f"{best.key}: within {illum_hours:g} h, closest INS.TEMP7 ({best.frames[0].ins_temp7:.2f} vs "
                      f"{temp:.2f} C) of {len(near)}", best)
    pool = near or in_window
    best = min(pool, key=lambda c: abs(c.mjd - mjd))
    hours = abs(best.mjd - mjd) * 24.0
    quality = GOOD if near else FALLBACK
    return Choice("ILLUM", quality, f"{best.key}: nearest in time ({hours:.1f} h)"
                  + ("" if near else f", none within {illum_hours:g} h"), best)


def associate(exposure: RawFrame, sets: Mapping[str, Sequence[CalibrationSet]], use_eso_masters: bool = False,
              illum_hours: float = 2.0, with_dark: bool = False) -> Association:
    """All calibration choices for one science (OBJECT/SKY) exposure."""
    result = Association(exposure)
    rules = MASTER_RULES if use_eso_masters else RAW_RULES
    for tag, rule in rules.items():
        if tag in {"DARK", "MASTER_DARK"} and not with_dark:
            continue
        result.choices[tag] = choose(exposure, rule, sets.get(tag, ()))
    result.choices["ILLUM"] = choose_illum(exposure, sets.get("ILLUM", ()), illum_hours)
    return result
