"""A synthetic calibration night in ESO's archive layout, as the demo and the DAG tests reduce it.

One bias template, lamp flats, arcs of three lamps (9 frames, as ESO's OCA wants), twilight sky flats
and the static calibrations (in ``static/`` beside the raw frames, found by their PRO.CATG), all for
the IFUs asked for (IFU 1 always: muse_twilight takes IFU 1 as its reference). Every frame of one CCD
carries the same fixed bias pattern, so the master bias removes it from flats and arcs as on the sky.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .calibration_frames import write_arc_set, write_flat_set, write_skyflat_set, write_static_calibrations
from .raw_frames import write_bias_set


@dataclass
class NightFiles:
    raw_dir: Path
    frames: dict[str, list[Path]] = field(default_factory=dict)  # pipeline tag -> raw frames
    statics: dict[str, Path] = field(default_factory=dict)  # PRO.CATG -> static calibration


def write_calibration_night(raw_dir: Path, ifus: Sequence[int] = (1,), seed: int = 1) -> NightFiles:
    """Write the night into ``raw_dir`` (made world-readable: the recipes run as an unprivileged user)."""
    ifus = sorted(set(ifus) | {1})
    night = NightFiles(raw_dir)
    night.frames["BIAS"] = write_bias_set(raw_dir, ifus, count=3, seed=seed)
    night.frames["FLAT"] = write_flat_set(raw_dir, ifus, seed=seed + 1, bias_seed=seed)
    night.frames["ARC"] = write_arc_set(raw_dir, ifus, seed=seed + 2, bias_seed=seed)
    night.frames["SKYFLAT"] = write_skyflat_set(raw_dir, ifus, seed=seed + 3, bias_seed=seed)
    night.statics = write_static_calibrations(raw_dir / "static", ifus)
    for directory in (raw_dir, raw_dir / "static"):
        directory.chmod(0o755)
    return night
