"""The declarative recipe registry: one entry per MUSE recipe, the only place that knows its inputs.

Each entry says which frames a recipe reads (raw, products of earlier steps, static calibrations),
which are required, which products it must write (checked by PRO.CATG after the run), whether it can
run on one IFU (``--nifu=N``), the options MUSEreduce always gave it, and which config section feeds it.
Adding a recipe or an input touches this file only; the planner and the SOF templates read it.
Inputs and products are from ``esorex --man-page`` of pipeline 2.8.7 and ``reflex/muse_wkf.oca``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

InputKind = Literal["raw", "product", "static"]


@dataclass(frozen=True)
class RecipeInput:
    """One SOF tag of a recipe: where its frames come from and whether the recipe can do without it."""

    tag: str
    kind: InputKind
    required: bool = True
    per_ifu: bool = False  # a product made per IFU (MASTER_BIAS-NN): a per-IFU step takes its own IFU's file
    note: str = ""


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    inputs: tuple[RecipeInput, ...]
    products: tuple[str, ...]  # PRO.CATG the run must write
    per_ifu: bool  # can run as one task per IFU (--nifu=N); otherwise reads all IFUs at once
    fixed_parameters: Mapping[str, Any] = field(default_factory=dict)
    config_section: str | None = None
    optional_products: tuple[str, ...] = ()

    def input(self, tag: str) -> RecipeInput:
        for item in self.inputs:
            if item.tag == tag:
                return item
        raise KeyError(f"{self.name} has no input {tag}; inputs: {', '.join(i.tag for i in self.inputs)}")

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(i.tag for i in self.inputs)


def _in(tag: str, kind: InputKind, required: bool = True, per_ifu: bool = False, note: str = "") -> RecipeInput:
    return RecipeInput(tag, kind, required, per_ifu, note)


_BIAS = _in("MASTER_BIAS", "product", per_ifu=True)
_DARK = _in("MASTER_DARK", "product", required=False, per_ifu=True, note="only with calibration.dark")
_FLAT = _in("MASTER_FLAT", "product", per_ifu=True)
_TRACE = _in("TRACE_TABLE", "product", per_ifu=True)
_WAVE = _in("WAVECAL_TABLE", "product", per_ifu=True)
_LSF = _in("LSF_PROFILE", "product", per_ifu=True)
_BADPIX = _in("BADPIX_TABLE", "static", required=False)

REGISTRY: dict[str, RecipeSpec] = {spec.name: spec for spec in (
    RecipeSpec("muse_bias", (_in("BIAS", "raw"), _BADPIX), ("MASTER_BIAS",), per_ifu=True,
               config_section="calibration"),
    RecipeSpec("muse_dark", (_in("DARK", "raw"), _BIAS, _BADPIX), ("MASTER_DARK",), per_ifu=True,
               config_section="calibration"),
    RecipeSpec("muse_flat", (_in("FLAT", "raw"), _BIAS, _DARK, _BADPIX), ("MASTER_FLAT", "TRACE_TABLE"),
               per_ifu=True, fixed_parameters={"samples": True}, config_section="calibration",
               optional_products=("TRACE_SAMPLES",)),
    RecipeSpec("muse_wavecal", (_in("ARC", "raw"), _BIAS, _TRACE, _in("LINE_CATALOG", "static"), _DARK,
                                _in("MASTER_FLAT", "product", required=False, per_ifu=True), _BADPIX),
               ("WAVECAL_TABLE",), per_ifu=True, fixed_parameters={"residuals": True},
               config_section="calibration", optional_products=("WAVECAL_RESIDUALS",)),
    RecipeSpec("muse_lsf", (_in("ARC", "raw"), _BIAS, _TRACE, _WAVE, _in("LINE_CATALOG", "static"), _DARK,
                            _in("MASTER_FLAT", "product", required=False, per_ifu=True), _BADPIX),
               ("LSF_PROFILE",), per_ifu=True, fixed_parameters={"save_subtracted": True},
               config_section="calibration"),
    RecipeSpec("muse_twilight", (_in("SKYFLAT", "raw"), _in("ILLUM", "raw", required=False),
                                 _in("MASTER_BIAS", "product"), _in("MASTER_FLAT", "product"),
                                 _in("TRACE_TABLE", "product"), _in("WAVECAL_TABLE", "product"),
                                 _in("GEOMETRY_TABLE", "static"), _in("MASTER_DARK", "product", required=False),
                                 _in("VIGNETTING_MASK", "static", required=False,
                                     note="only for sky flats before MJD 57823 (2017-03-11), as ESO's OCA"),
                                 _BADPIX),
               ("TWILIGHT_CUBE",), per_ifu=False, config_section="calibration",
               optional_products=("DATACUBE_SKYFLAT",)),
    RecipeSpec("muse_scibasic", (_in("OBJECT", "raw", required=False), _in("SKY", "raw", required=False),
                                 _in("STD", "raw", required=False), _in("ILLUM", "raw", required=False),
                                 _BIAS, _FLAT, _TRACE, _WAVE, _in("GEOMETRY_TABLE", "static"),
                                 _in("TWILIGHT_CUBE", "product", required=False), _DARK, _BADPIX),
               (), per_ifu=True, fixed_parameters={"resample": True, "saveimage": False},
               config_section="sci_basic"),
    RecipeSpec("muse_standard", (_in("PIXTABLE_STD", "product"), _in("EXTINCT_TABLE", "static"),
                                 _in("STD_FLUX_TABLE", "static"), _in("FILTER_LIST", "static", required=False),
                                 _in("TELLURIC_REGIONS", "static", required=False)),
               ("STD_RESPONSE", "STD_TELLURIC"), per_ifu=False, config_section="std_flux",
               optional_products=("DATACUBE_STD", "STD_FLUXES")),
    RecipeSpec("muse_create_sky", (_in("PIXTABLE_SKY", "product"), _in("EXTINCT_TABLE", "static"),
                                   _in("STD_RESPONSE", "product"), _in("STD_TELLURIC", "product", required=False),
                                   _in("SKY_LINES", "static"), _LSF,
                                   _in("SKY_CONTINUUM", "product", required=False,
                                       note="the zeroed continuum of the modified sky (Zeidler et al. 2019)")),
               ("SKY_LINES", "SKY_CONTINUUM"), per_ifu=False, config_section="sky",
               optional_products=("SKY_MASK", "SKY_SPECTRUM", "SKY_IMAGE")),
    RecipeSpec("muse_scipost", (_in("PIXTABLE_OBJECT", "product"), _in("EXTINCT_TABLE", "static"),
                                _in("STD_RESPONSE", "product"), _in("STD_TELLURIC", "product", required=False),
                                _in("ASTROMETRY_WCS", "static", required=False),
                                _in("FILTER_LIST", "static", required=False),
                                _in("SKY_LINES", "product", required=False),
                                _in("SKY_CONTINUUM", "product", required=False),
                                _in("LSF_PROFILE", "product", required=False),
                                _in("RAMAN_LINES", "static", required=False, note="AO modes with sci_post.raman"),
                                _in("SKY_MASK", "product", required=False, note="autocalib deepfield/user"),
                                _in("AUTOCAL_FACTORS", "static", required=False, note="autocalib user"),
                                _in("OUTPUT_WCS", "static", required=False)),
               ("DATACUBE_FINAL", "IMAGE_FOV", "PIXTABLE_REDUCED"), per_ifu=False,
               fixed_parameters={"save": "cube,individual", "filter": "white"}, config_section="sci_post"),
    RecipeSpec("muse_exp_align", (_in("IMAGE_FOV", "product"), _in("SOURCE_LIST", "product", required=False)),
               ("OFFSET_LIST",), per_ifu=False, config_section="exp_align",
               optional_products=("SOURCE_LIST", "PREVIEW_FOV")),
    RecipeSpec("muse_exp_combine", (_in("PIXTABLE_REDUCED", "product"), _in("OFFSET_LIST", "product", required=False),
                                    _in("FILTER_LIST", "static", required=False),
                                    _in("OUTPUT_WCS", "static", required=False)),
               ("DATACUBE_FINAL",), per_ifu=False,
               fixed_parameters={"filter": "white", "save": "cube", "crsigma": 5.0}, config_section="exp_combine",
               optional_products=("IMAGE_FOV",)),
)}

# Which raw science tag a muse_scibasic run turns into which pixel-table category.
SCIBASIC_PRODUCT = {"OBJECT": "PIXTABLE_OBJECT", "SKY": "PIXTABLE_SKY", "STD": "PIXTABLE_STD"}


def spec(recipe: str) -> RecipeSpec:
    try:
        return REGISTRY[recipe]
    except KeyError:
        raise KeyError(f"no recipe {recipe!r} in the registry; known: {', '.join(sorted(REGISTRY))}") from None
