"""Build a :class:`~muse_operators.plan.ReductionPlan` from a pool of raw frames.

Calibrations: every raw calibration template gets exactly one chain of its own, found by associating
the template itself with the header rules (a flat gets its nearest bias, an arc its bias and flat, a
sky flat all three), so each set has one deterministic upstream and a product directory of its own:
``calibrations/<stage>/<TPL.START>/ifuNN``. Per-CCD recipes run once per IFU (``--nifu=N``); muse_twilight
reads every IFU's products at once. Without science frames every calibration template in the pool is
planned (a calibration night); with science frames only what the exposures need.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .associate.rules import MISSING, RAW_RULES, CalibrationSet, choose
from .headers import RawFrame
from .plan import ReductionPlan, SofInput, Step
from .recipes import spec

STATIC_CATEGORIES = ("LINE_CATALOG", "GEOMETRY_TABLE", "EXTINCT_TABLE", "STD_FLUX_TABLE", "FILTER_LIST",
                     "SKY_LINES", "BADPIX_TABLE", "VIGNETTING_MASK", "ASTROMETRY_WCS", "RAMAN_LINES",
                     "TELLURIC_REGIONS", "AUTOCAL_FACTORS", "OUTPUT_WCS")
# Sky flats taken after this date need no VIGNETTING_MASK (ESO's OCA: inputFile.MJD-OBS < 57823).
VIGNETTING_MASK_BEFORE_MJD = 57823.0


def set_key(cset: CalibrationSet) -> str:
    """A filesystem-safe name of a calibration set: its TPL.START (``2024-01-01T12-00-00``)."""
    return cset.key.replace(":", "-").replace("/", "_")


def set_ifus(cset: CalibrationSet, wanted: Sequence[int] | None) -> list[int]:
    """IFUs with data in every frame of the set (restricted to ``wanted``)."""
    present = set.intersection(*(set(f.ifus) for f in cset.frames)) if cset.frames else set()
    return sorted(i for i in present if wanted is None or i in wanted)


class CalibrationPlanner:
    """Plans the calibration steps of one pool; remembers what it planned so chains are shared."""

    def __init__(self, plan: ReductionPlan, sets: Mapping[str, Sequence[CalibrationSet]],
                 statics: Mapping[str, Sequence[str]], params: Any, ifus: Sequence[int] | None,
                 with_dark: bool = False) -> None:
        self.plan, self.sets, self.statics, self.params, self.ifus = plan, sets, statics, params, ifus
        self.with_dark = with_dark
        self.out = Path(plan.output_dir) / "calibrations"
        self.planned: dict[tuple[str, str], dict[int, str]] = {}  # (stage, set key) -> {ifu: step name}

    # -- helpers -------------------------------------------------------------------------------------
    def _upstream(self, cset: CalibrationSet, tag: str) -> CalibrationSet | None:
        """The set of ``tag`` this calibration set itself needs, by the OCA rules; None if none.

        A missing required set is an error of the plan; a missing optional one (DARK) only a note.
        """
        choice = choose(cset.frames[0], RAW_RULES[tag], self.sets.get(tag, ()))
        if choice.quality == MISSING:
            (self.plan.errors if RAW_RULES[tag].required else self.plan.report).append(
                f"{cset.tag} set {cset.key}: {choice.reason}")
            return None
        self.plan.report.append(f"{cset.tag} {cset.key} uses {tag} [{choice.quality}] {choice.reason}")
        return choice.chosen

    def static(self, tag: str, required: bool, who: str, mode: str | None = None) -> list[SofInput]:
        """The static calibration ``tag``; with several files, the one named for the mode family (nfm/wfm).

        MUSEreduce gave NFM-AO data the WFM geometry table; ESO ships ``*_wfm.fits`` and ``*_nfm.fits``.
        """
        candidates = list(self.statics.get(tag, ()))
        if candidates:
            family = "nfm" if (mode or "").startswith("NFM") else "wfm"
            named = [p for p in candidates if family in Path(p).name.lower()]
            return [SofInput(tag, path=(named or candidates)[0])]
        if required:
            self.plan.errors.append(f"{who}: static calibration {tag} not found (give global.static_calib_path "
                                    f"or put a file with ESO PRO CATG = {tag} in the raw directory)")
        return []

    def _step(self, stage: str, cset: CalibrationSet, ifu: int | None, inputs: list[SofInput],
              extra_params: dict[str, Any] | None = None) -> str:
        recipe = {"bias": "muse_bias", "dark": "muse_dark", "flat": "muse_flat", "wavecal": "muse_wavecal",
                  "lsf": "muse_lsf", "twilight": "muse_twilight"}[stage]
        parameters = {**spec(recipe).fixed_parameters, **self.params(recipe), **(extra_params or {})}
        name = f"{stage}.{set_key(cset)}" + (f".{ifu:02d}" if ifu is not None else "")
        directory = self.out / stage / set_key(cset) / (f"ifu{ifu:02d}" if ifu is not None else "")
        if ifu is not None:
            parameters = {**parameters, "nifu": ifu}
        self.plan.steps.append(Step(name=name, recipe=recipe, stage=stage, inputs=inputs,
                                    output_dir=str(directory).rstrip("/"), parameters=parameters,
                                    expected_products=list(spec(recipe).products), ifu=ifu))
        return name

    # -- the chain -----------------------------------------------------------------------------------
    def bias(self, cset: CalibrationSet) -> dict[int, str]:
        key = ("bias", cset.key)
        if key not in self.planned:
            self.planned[key] = {ifu: self._step("bias", cset, ifu, [SofInput("BIAS", path=p) for p in cset.paths])
                                 for ifu in set_ifus(cset, self.ifus)}
        return self.planned[key]

    def dark(self, cset: CalibrationSet | None) -> dict[int, str]:
        """MASTER_DARK steps of the dark set a calibration set uses (only with calibration.dark)."""
        if cset is None:
            return {}
        key = ("dark", cset.key)
        if key not in self.planned:
            bias_set = self._upstream(cset, "BIAS")
            bias = self.bias(bias_set) if bias_set else {}
            self.planned[key] = {
                ifu: self._step("dark", cset, ifu, [SofInput("DARK", path=p) for p in cset.paths]
                                + [SofInput("MASTER_BIAS", step=bias[ifu])])
                for ifu in set_ifus(cset, self.ifus) if ifu in bias}
        return self.planned[key]

    def dark_inputs(self, cset: CalibrationSet, ifu: int) -> list[SofInput]:
        if not self.with_dark:
            return []
        darks = self.dark(self._upstream(cset, "DARK"))
        return [SofInput("MASTER_DARK", step=darks[ifu])] if ifu in darks else []

    def flat(self, cset: CalibrationSet) -> dict[int, str]:
        key = ("flat", cset.key)
        if key not in self.planned:
            bias_set = self._upstream(cset, "BIAS")
            bias = self.bias(bias_set) if bias_set else {}
            self.planned[key] = {
                ifu: self._step("flat", cset, ifu, [SofInput("FLAT", path=p) for p in cset.paths]
                                + [SofInput("MASTER_BIAS", step=bias[ifu])] + self.dark_inputs(cset, ifu))
                for ifu in set_ifus(cset, self.ifus) if ifu in bias}
        return self.planned[key]

    def arc_chain(self, cset: CalibrationSet) -> tuple[dict[int, str], dict[int, str]]:
        """wavecal and lsf steps of an arc set (both read the same arcs, bias and trace)."""
        if ("wavecal", cset.key) not in self.planned:
            bias_set, flat_set = self._upstream(cset, "BIAS"), self._upstream(cset, "FLAT")
            bias = self.bias(bias_set) if bias_set else {}
            flat = self.flat(flat_set) if flat_set else {}
            wavecal, lsf = {}, {}
            for ifu in set_ifus(cset, self.ifus):
                if ifu not in bias or ifu not in flat:
                    continue
                common = ([SofInput("ARC", path=p) for p in cset.paths]
                          + [SofInput("MASTER_BIAS", step=bias[ifu]),
                             SofInput("TRACE_TABLE", step=flat[ifu], catg="TRACE_TABLE")]
                          + self.static("LINE_CATALOG", True, f"ARC set {cset.key}")
                          + self.dark_inputs(cset, ifu))
                wavecal[ifu] = self._step("wavecal", cset, ifu, list(common))
                lsf[ifu] = self._step("lsf", cset, ifu, common + [SofInput("WAVECAL_TABLE", step=wavecal[ifu])])
            self.planned[("wavecal", cset.key)], self.planned[("lsf", cset.key)] = wavecal, lsf
        return self.planned[("wavecal", cset.key)], self.planned[("lsf", cset.key)]

    def twilight(self, cset: CalibrationSet, illum: CalibrationSet | None = None) -> str | None:
        key = ("twilight", cset.key)
        if key not in self.planned:
            bias_set, flat_set, arc_set = (self._upstream(cset, t) for t in ("BIAS", "FLAT", "ARC"))
            if not (bias_set and flat_set and arc_set):
                self.planned[key] = {}
                return None
            bias, flat = self.bias(bias_set), self.flat(flat_set)
            wavecal, _ = self.arc_chain(arc_set)
            ifus = [i for i in set_ifus(cset, self.ifus) if i in bias and i in flat and i in wavecal]
            if 1 not in ifus:
                self.plan.errors.append(f"SKYFLAT set {cset.key}: muse_twilight needs IFU 1 (it takes IFU 1's "
                                        f"pixel table as reference); IFUs available: {ifus}")
                self.planned[key] = {}
                return None
            inputs = [SofInput("SKYFLAT", path=p) for p in cset.paths]
            inputs += [SofInput("ILLUM", path=p) for p in (illum.paths if illum else [])]
            for ifu in ifus:
                inputs += [SofInput("MASTER_BIAS", step=bias[ifu]), SofInput("MASTER_FLAT", step=flat[ifu]),
                           SofInput("TRACE_TABLE", step=flat[ifu]), SofInput("WAVECAL_TABLE", step=wavecal[ifu])]
                inputs += self.dark_inputs(cset, ifu)
            inputs += self.static("GEOMETRY_TABLE", True, f"SKYFLAT set {cset.key}", cset.ins_mode)
            if cset.mjd < VIGNETTING_MASK_BEFORE_MJD:
                inputs += self.static("VIGNETTING_MASK", False, f"SKYFLAT set {cset.key}")
            self.planned[key] = {0: self._step("twilight", cset, None, inputs)}
        return self.planned[key].get(0)

    def everything(self) -> None:
        """A calibration night: plan every template in the pool."""
        for cset in self.sets.get("BIAS", ()):
            self.bias(cset)
        for cset in self.sets.get("DARK", ()) if self.with_dark else ():
            self.dark(cset)
        for cset in self.sets.get("FLAT", ()):
            self.flat(cset)
        for cset in self.sets.get("ARC", ()):
            self.arc_chain(cset)
        for cset in self.sets.get("SKYFLAT", ()):
            self.twilight(cset)


def statics_from(frames: Iterable[RawFrame], static_dir: str | None = None) -> dict[str, list[str]]:
    """Static calibrations by PRO.CATG: files in ``static_dir`` first, then any in the raw pool."""
    from .headers import scan

    found: dict[str, list[str]] = {}
    pool = list(frames)
    if static_dir:
        pool = scan(Path(static_dir)).frames + pool
    for frame in pool:
        if frame.pro_catg in STATIC_CATEGORIES:
            found.setdefault(str(frame.pro_catg), []).append(frame.path)
    return found


def plan_reduction(raw_dir: str | Path, output_dir: str | Path, config: Any = None,
                   ifus: Sequence[int] | None = None, frames: Sequence[RawFrame] | None = None,
                   index_path: str | Path | None = None) -> ReductionPlan:
    """Scan ``raw_dir`` (or take ``frames``), and plan every step the pool and the config call for.

    With ``index_path`` the headers come from the on-disk header index (only new or changed files are
    read), which makes re-planning an unchanged archive cost a fraction of a second.
    """
    from .associate.rules import calibration_sets
    from .classify import classify
    from .config import load_config
    from .headers import RAW_SUFFIXES, scan

    cfg = load_config(config)
    raw = Path(raw_dir).absolute()
    # A Config passed in (the DAG's request) carries the notes of its own loading; re-loading it finds none.
    notes = list(dict.fromkeys([*getattr(config, "notes", []), *cfg.notes]))
    plan = ReductionPlan(str(raw), str(Path(output_dir).absolute()), config=dict(cfg), config_notes=notes,
                         config_warnings=list(cfg.warnings))
    if frames is None:
        if index_path:
            from .header_index import HeaderIndex

            with HeaderIndex(index_path) as index:
                result = index.scan(raw, with_ifus=True)
        else:
            result = scan(raw, with_ifus=True)
        frames, plan.unreadable = result.frames, result.unreadable
        if not frames and not plan.unreadable:
            plan.errors.append(f"no raw MUSE files ({', '.join('*' + s for s in RAW_SUFFIXES)}) under {raw}: "
                               "check the directory (sub-directories are searched too)")
    for frame in frames:
        tag = classify(frame)
        if tag.tag is None:
            plan.unclassified.append((frame.path, tag.reason))
    sets = calibration_sets(frames)
    statics = statics_from(frames, cfg.get_path("global.static_calib_path") or None)
    planner = CalibrationPlanner(plan, sets, statics, cfg.recipe_parameters, ifus,
                                 with_dark=bool(cfg.get_path("calibration.dark")))
    science = [f for f in frames if classify(f).tag in {"OBJECT", "SKY"}]
    if not science:
        plan.report.append("no science frames: planning every calibration template in the pool")
        planner.everything()
    else:
        from .science_planner import plan_science

        plan_science(plan, planner, frames, cfg)
    from .switches import apply_switches

    if cfg.get_path("global.ifu_tasks") == "merged":
        from .ifu_merge import merge_ifu_steps

        merge_ifu_steps(plan)
    apply_switches(plan, cfg)
    plan.check()
    return plan
