"""Plan the science half of a reduction: scibasic, standard star, sky, scipost, align and combine.

For every selected exposure the calibrations come from the header-rule association (or ESO's masters
with ``global.using_ESO_Calibration``); the per-IFU recipes run once per IFU and the post-processing
recipes read all IFUs. Layout, in MUSEreduce's terms:

    reduced/<OB>/<RADEC_EXPTIME_ROT_NN>/{scibasic/ifuNN, create_sky, scipost}
    reduced/std/<STD archive name>/{scibasic/ifuNN, standard}
    reduced/<OB>/<RADEC_EXPTIME>/{exp_align, exp_combine}      (reduced/<RADEC_EXPTIME>/ across OBs)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .associate.report import compare, xml_files_for
from .associate.rules import MISSING, Association, associate
from .grouping import Exposure, Pointing, combine_obs, group_science, select_exposures, select_obs
from .headers import RawFrame
from .plan import ReductionPlan, SofInput, Step
from .planner import CalibrationPlanner
from .recipes import SCIBASIC_PRODUCT, spec

AO_MODES = ("WFM-AO-N", "WFM-AO-E", "NFM-AO-N")  # ESO's OCA adds RAMAN_LINES for these


class SciencePlanner:
    def __init__(self, plan: ReductionPlan, cal: CalibrationPlanner, cfg: Any) -> None:
        self.plan, self.cal, self.cfg = plan, cal, cfg
        self.reduced = Path(plan.output_dir) / "reduced"
        self.use_eso = bool(cfg.get_path("global.using_ESO_Calibration"))
        self.std_steps: dict[str, str] = {}  # STD path -> standard step
        self.sky_steps: dict[str, dict[str, str]] = {}  # sky source -> {SKY_LINES|SKY_CONTINUUM|SKY_MASK: step}
        self.scibasic: dict[str, dict[int, str]] = {}  # raw path -> {ifu: step}

    def _params(self, recipe: str, **extra: Any) -> dict[str, Any]:
        return {**spec(recipe).fixed_parameters, **self.cal.params(recipe), **extra}

    def _add(self, name: str, recipe: str, stage: str, inputs: list[SofInput], out: Path, products: list[str],
             parameters: dict[str, Any], ifu: int | None = None, notes: Sequence[str] = ()) -> str:
        self.plan.steps.append(Step(name, recipe, stage, inputs, str(out), parameters, products, ifu, list(notes)))
        return name

    # -- calibrations an exposure's per-IFU recipes read ---------------------------------------------
    def calibration_inputs(self, assoc: Association, ifu: int) -> list[SofInput] | None:
        c = assoc.choices
        if self.use_eso:
            inputs = []
            for catg in ("MASTER_BIAS", "MASTER_FLAT", "TRACE_TABLE", "WAVECAL_TABLE", "TWILIGHT_CUBE", "MASTER_DARK"):
                if catg in c and c[catg].quality != MISSING:
                    inputs += [SofInput(catg, path=p) for p in c[catg].paths]
            return inputs
        bias = self.cal.bias(c["BIAS"].chosen) if c["BIAS"].chosen else {}
        flat = self.cal.flat(c["FLAT"].chosen) if c["FLAT"].chosen else {}
        wavecal, _ = self.cal.arc_chain(c["ARC"].chosen) if c["ARC"].chosen else ({}, {})
        if ifu not in bias or ifu not in flat or ifu not in wavecal:
            return None
        inputs = [SofInput("MASTER_BIAS", step=bias[ifu]), SofInput("MASTER_FLAT", step=flat[ifu]),
                  SofInput("TRACE_TABLE", step=flat[ifu]), SofInput("WAVECAL_TABLE", step=wavecal[ifu])]
        if self.cal.with_dark and c.get("DARK") and c["DARK"].chosen:
            darks = self.cal.dark(c["DARK"].chosen)
            inputs += [SofInput("MASTER_DARK", step=darks[ifu])] if ifu in darks else []
        if c.get("SKYFLAT") and c["SKYFLAT"].chosen:
            twilight = self.cal.twilight(c["SKYFLAT"].chosen)
            if twilight:
                inputs.append(SofInput("TWILIGHT_CUBE", step=twilight))
        return inputs

    def lsf_inputs(self, assoc: Association, ifus: Sequence[int]) -> list[SofInput]:
        if self.use_eso:
            return [SofInput("LSF_PROFILE", path=p) for p in assoc.choices["LSF_PROFILE"].paths]
        arc = assoc.choices["ARC"].chosen
        _, lsf = self.cal.arc_chain(arc) if arc else ({}, {})
        return [SofInput("LSF_PROFILE", step=lsf[i]) for i in ifus if i in lsf]

    # -- per exposure ----------------------------------------------------------------------------------
    def scibasic_steps(self, frame: RawFrame, tag: str, assoc: Association, out: Path, label: str) -> dict[int, str]:
        if frame.path in self.scibasic:
            return self.scibasic[frame.path]
        steps: dict[int, str] = {}
        illum = [SofInput("ILLUM", path=p) for p in assoc.choices["ILLUM"].paths]
        geometry = self.cal.static("GEOMETRY_TABLE", True, f"{label}", frame.ins_mode)
        for ifu in sorted(i for i in frame.ifus if self.cal.ifus is None or i in self.cal.ifus):
            calib = self.calibration_inputs(assoc, ifu)
            if calib is None:
                self.plan.errors.append(f"{label} IFU {ifu}: no calibration chain for this IFU")
                continue
            inputs = [SofInput(tag, path=frame.path), *illum, *calib, *geometry]
            steps[ifu] = self._add(f"scibasic.{label}.{ifu:02d}", "muse_scibasic", "scibasic", inputs,
                                   out / "scibasic" / f"ifu{ifu:02d}", [SCIBASIC_PRODUCT[tag]],
                                   self._params("muse_scibasic", nifu=ifu), ifu)
        self.scibasic[frame.path] = steps
        return steps

    def standard_step(self, std: RawFrame, assoc: Association) -> str | None:
        if std.path in self.std_steps:
            return self.std_steps[std.path]
        label = Path(std.path).name.split(".fits")[0]
        out = self.reduced / "std" / label
        pixtables = self.scibasic_steps(std, "STD", assoc, out, f"std.{label}")
        if not pixtables:
            self.plan.errors.append(f"standard {label}: no IFU with data (or no calibration chain) to reduce")
            self.std_steps[std.path] = None  # type: ignore[assignment]
            return None
        inputs = [SofInput("PIXTABLE_STD", step=s) for s in pixtables.values()]
        inputs += self.cal.static("EXTINCT_TABLE", True, f"standard {label}")
        inputs += self.cal.static("STD_FLUX_TABLE", True, f"standard {label}")
        inputs += self.cal.static("FILTER_LIST", False, f"standard {label}")
        name = self._add(f"standard.{label}", "muse_standard", "standard", inputs, out / "standard",
                         list(spec("muse_standard").products), self._params("muse_standard"))
        self.std_steps[std.path] = name
        return name

    def response_inputs(self, assoc: Association) -> list[SofInput] | None:
        """Own muse_standard products, or ESO's STD_RESPONSE masters when std_flux.execute is false.

        With std_flux.execute false and no masters in the pool, the standard step is still planned,
        switched off: it hands on the response of an earlier run (muse_operators.switches).
        """
        std = assoc.choices.get("STD")
        masters = [SofInput(c, path=p) for c in ("STD_RESPONSE", "STD_TELLURIC")
                   for p in (assoc.choices[c].paths if c in assoc.choices else [])]
        have_masters = any(i.tag == "STD_RESPONSE" for i in masters)
        if std and std.chosen and (self.cfg.get_path("std_flux.execute") or not have_masters):
            name = self.standard_step(std.chosen.frames[0], assoc)
            return [SofInput("STD_RESPONSE", step=name), SofInput("STD_TELLURIC", step=name)]
        return masters if have_masters else None

    def sky_step(self, source: Exposure, assoc: Association, out: Path) -> dict[str, str] | None:
        """The steps that make the sky model of ``source``, by the product each provides to scipost."""
        if source.frame.path in self.sky_steps:
            return self.sky_steps[source.frame.path]
        pixtables = self.scibasic_steps(source.frame, source.tag, assoc, out, f"{source.ob}.{source.name}")
        response = self.response_inputs(assoc)
        if not pixtables:
            self.plan.errors.append(f"{source.qualified_name}: no IFU with data to make a sky model from")
            return None
        if response is None:
            self.plan.errors.append(f"{source.name}: muse_create_sky needs STD_RESPONSE: no standard star")
            return None
        catg = SCIBASIC_PRODUCT[source.tag]
        inputs = [SofInput("PIXTABLE_SKY", step=s, catg=catg) for s in pixtables.values()]
        inputs += self.cal.static("EXTINCT_TABLE", True, "create_sky") + response
        inputs += self.cal.static("SKY_LINES", True, "create_sky") + self.lsf_inputs(assoc, sorted(pixtables))
        label = f"{source.ob}.{source.name}"
        name = self._add(f"create_sky.{label}", "muse_create_sky", "create_sky", inputs, out / "create_sky",
                         list(spec("muse_create_sky").products), self._params("muse_create_sky"))
        made = {"SKY_LINES": name, "SKY_CONTINUUM": name, "SKY_MASK": name}
        if self.cfg.get_path("sky.modified"):  # Zeidler et al. 2019 (sky.py): zero continuum, re-fit, OH/O2 only
            zero = self._add(f"sky_zero.{label}", "python:zero_sky_continuum", "sky_zero",
                             [SofInput("SKY_CONTINUUM", step=name)], out / "sky_zero", ["SKY_CONTINUUM"], {})
            refit = self._add(f"sky_refit.{label}", "muse_create_sky", "sky_refit",
                              inputs + [SofInput("SKY_CONTINUUM", step=zero)], out / "create_sky_refit",
                              ["SKY_LINES"], self._params("muse_create_sky"),
                              notes=["lines re-fitted against the zeroed continuum"])
            lines = self._add(f"sky_lines.{label}", "python:keep_molecular_sky_lines", "sky_lines",
                              [SofInput("SKY_LINES", step=refit)], out / "sky_lines", ["SKY_LINES"], {})
            made = {"SKY_LINES": lines, "SKY_CONTINUUM": zero, "SKY_MASK": name}
        self.sky_steps[source.frame.path] = made
        return made

    def scipost_step(self, exposure: Exposure, assoc: Association, sky_source: Exposure | None) -> str | None:
        out = self.reduced / exposure.ob / exposure.name
        pixtables = self.scibasic_steps(exposure.frame, "OBJECT", assoc, out, f"{exposure.ob}.{exposure.name}")
        if not pixtables:
            self.plan.errors.append(f"{exposure.qualified_name}: no IFU with data in {exposure.frame.path} "
                                    f"(all CHANnn extensions dead or outside the requested IFUs)")
            return None
        response = self.response_inputs(assoc)
        if response is None:
            self.plan.errors.append(f"{exposure.qualified_name}: muse_scipost needs STD_RESPONSE: no standard "
                                    "star (STD) or ESO STD_RESPONSE for this exposure")
            return None
        inputs = [SofInput("PIXTABLE_OBJECT", step=s) for s in pixtables.values()]
        inputs += self.cal.static("EXTINCT_TABLE", True, "scipost") + response
        inputs += self.cal.static("FILTER_LIST", False, "scipost")
        inputs += self.cal.static("ASTROMETRY_WCS", False, "scipost", exposure.frame.ins_mode)
        inputs += self.lsf_inputs(assoc, sorted(pixtables))
        extra: dict[str, Any] = {}
        sky = None
        if self.cfg.get_path("sci_post.subtract_sky") and sky_source is not None:
            source_out = self.reduced / sky_source.ob / sky_source.name
            sky = self.sky_step(sky_source, assoc if sky_source is exposure else self.associate(sky_source), source_out)
            if sky:
                inputs += [SofInput("SKY_LINES", step=sky["SKY_LINES"]),
                           SofInput("SKY_CONTINUUM", step=sky["SKY_CONTINUUM"])]
                if self.cfg.get_path("sky.modified"):
                    extra["skymethod"] = "subtract-model"  # subtract exactly the modified model, no re-fit
        else:
            extra["skymethod"] = "none"
        autocalib = self.cfg.get_path("sci_post.autocalib")
        if autocalib == "deepfield" and sky:
            inputs.append(SofInput("SKY_MASK", step=sky["SKY_MASK"]))  # the self-calibration's sky regions
        elif autocalib == "user":
            inputs += self.cal.static("AUTOCAL_FACTORS", True, f"{exposure.name} (sci_post.autocalib = user)")
        if self.cfg.get_path("sci_post.raman") and exposure.frame.ins_mode in AO_MODES:
            inputs += self.cal.static("RAMAN_LINES", True, f"{exposure.name} (sci_post.raman)")
        return self._add(f"scipost.{exposure.ob}.{exposure.name}", "muse_scipost", "scipost", inputs,
                         out / "scipost", list(spec("muse_scipost").products), self._params("muse_scipost", **extra))

    def associate(self, exposure: Exposure) -> Association:
        return associate(exposure.frame, self.cal.sets, use_eso_masters=self.use_eso,
                         with_dark=bool(self.cfg.get_path("calibration.dark")))

    def combine_steps(self, pointing: Pointing, scipost: dict[str, str], base: Path) -> None:
        members = [scipost[e.frame.path] for e in pointing.exposures if e.frame.path in scipost]
        out = base / pointing.name
        if len(members) < 2:
            self.plan.report.append(f"pointing {pointing.name}: {len(members)} exposure(s); the scipost "
                                    "DATACUBE_FINAL is its cube (exp_align/exp_combine need >= 2)")
            return
        align = None
        if self.cfg.get_path("exp_align.execute"):
            align = self._add(f"exp_align.{pointing.name}", "muse_exp_align", "exp_align",
                              [SofInput("IMAGE_FOV", step=s) for s in members], out / "exp_align",
                              list(spec("muse_exp_align").products), self._params("muse_exp_align"))
        if self.cfg.get_path("exp_combine.execute"):
            inputs = [SofInput("PIXTABLE_REDUCED", step=s) for s in members]
            inputs += [SofInput("OFFSET_LIST", step=align)] if align else []
            inputs += self.cal.static("FILTER_LIST", False, "exp_combine")
            self._add(f"exp_combine.{pointing.name}", "muse_exp_combine", "exp_combine", inputs, out / "exp_combine",
                      list(spec("muse_exp_combine").products), self._params("muse_exp_combine"))


def nearest_in_time(items: Sequence[Exposure], times: Sequence[float], mjd: float) -> Exposure:
    """The item nearest to ``mjd`` of a time-sorted sequence (binary search, ties to the earlier)."""
    import bisect

    at = bisect.bisect_left(times, mjd)
    around = [i for i in (at - 1, at) if 0 <= i < len(items)]
    return items[min(around, key=lambda i: (abs(times[i] - mjd), i))]


def plan_science(plan: ReductionPlan, cal: CalibrationPlanner, frames: Sequence[RawFrame], cfg: Any) -> None:
    """Add the science steps (and the calibrations they need) of every selected exposure to ``plan``."""
    sp = SciencePlanner(plan, cal, cfg)
    found = group_science(frames)
    obs = select_obs(found, cfg.get_path("global.OB_list") or None)
    plan.report += [f"OB {ob.name} not in global.OB_list: not reduced" for ob in found if ob not in obs]
    selection = select_exposures(obs, cfg.get_path("global.exp_list") or None,
                                 cfg.get_path("global.using_specific_exposure_time") or None)
    plan.report += [line for ob in obs for line in ob.describe()] + selection.describe()
    if sp.use_eso and not any(tag.startswith("MASTER_") for tag in cal.sets):
        plan.errors.append("global.using_ESO_Calibration is true but the pool has no ESO master calibrations "
                           "(ESO PRO CATG = MASTER_*); set it to false to reduce the raw calibrations")
        return
    skies = sorted((e for e in selection.exposures if e.tag == "SKY"), key=lambda e: e.frame.mjd_obs or 0.0)
    sky_times = [e.frame.mjd_obs or 0.0 for e in skies]
    scipost: dict[str, str] = {}
    for exposure in selection.exposures:
        if exposure.tag != "OBJECT":
            continue
        assoc = sp.associate(exposure)
        plan.report += assoc.describe()
        plan.errors += [f"{exposure.qualified_name}: {e}" for e in assoc.errors]
        xml = xml_files_for(exposure.frame.path)
        if xml is not None:
            plan.report += [f"XML disagreement: {d.describe()}" for d in compare(assoc, xml)]
        if assoc.errors:
            continue
        source: Exposure | None = exposure
        if cfg.get_path("sky.sky_field") == "auto" and skies:
            source = nearest_in_time(skies, sky_times, exposure.frame.mjd_obs or 0.0)
        name = sp.scipost_step(exposure, assoc, source)  # sci_post.execute false: switched off, not left out
        if name:
            scipost[exposure.frame.path] = name
    if cfg.get_path("global.dither_multiple_OBs"):
        pointings = combine_obs(obs, cfg.get_path("global.OB_list"))
        for pointing in selection.restrict(pointings):
            sp.combine_steps(pointing, scipost, sp.reduced)
    else:
        for ob in obs:
            for pointing in selection.restrict(ob.pointings):
                sp.combine_steps(pointing, scipost, sp.reduced / ob.name)
