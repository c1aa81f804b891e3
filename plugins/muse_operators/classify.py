"""Classify raw frames into the pipeline's tags, following ESO's own rules (``reflex/muse_wkf.oca``).

The rules are data, one row per OCA ``if ... then REFLEX.CATG = ...`` rule, in the OCA's order; the
first matching row wins. Processed files (static calibrations and masters) are classified by their
``ESO PRO CATG``, as the OCA does.
"""
from __future__ import annotations

from dataclasses import dataclass

from .headers import RawFrame


@dataclass(frozen=True)
class OcaRule:
    """One classification rule: DPR CATG values, a DPR TYPE test, the tag, and a minimum TPL NEXP."""

    catgs: tuple[str, ...]
    type_equals: str | None  # exact DPR TYPE, or None to use type_contains
    type_contains: tuple[str, ...]  # every substring must occur (OCA 'like %A% and like %B%')
    tag: str
    min_nexp: int = 0


# In the order of reflex/muse_wkf.oca (pipeline 2.8.7). DPR TECH must be IFU and INSTRUME MUSE for all.
OCA_RULES: tuple[OcaRule, ...] = (
    OcaRule(("CALIB",), "BIAS", (), "BIAS", 3),
    OcaRule(("CALIB",), "DARK", (), "DARK", 3),
    OcaRule(("CALIB",), None, ("FLAT", "ILLUM"), "ILLUM"),
    OcaRule(("CALIB",), None, ("FLAT", "LAMP"), "FLAT", 3),
    OcaRule(("CALIB",), None, ("FLAT", "SKY"), "SKYFLAT", 3),
    OcaRule(("CALIB",), "WAVE,LSF", (), "ARC_LSF"),
    OcaRule(("CALIB",), "WAVE", (), "ARC"),
    OcaRule(("CALIB",), "WAVE,MASK", (), "MASK"),
    OcaRule(("CALIB", "SCIENCE"), "SKY", (), "SKY"),
    OcaRule(("CALIB",), "STD", (), "STD"),
    OcaRule(("CALIB",), "ASTROMETRY", (), "ASTROMETRY"),
    OcaRule(("SCIENCE",), "OBJECT", (), "OBJECT"),
    OcaRule(("CALIB",), None, ("TELLU",), "OBJECT"),
)


@dataclass(frozen=True)
class Classification:
    tag: str | None
    reason: str


def classify(frame: RawFrame) -> Classification:
    """The pipeline tag of one frame and why (or None and why not)."""
    if frame.instrument != "MUSE":
        return Classification(None, f"INSTRUME is {frame.instrument!r}, not MUSE")
    if frame.pro_catg:
        return Classification(str(frame.pro_catg), f"processed file, ESO PRO CATG = {frame.pro_catg}")
    if frame.dpr_tech != "IFU":
        return Classification(None, f"ESO DPR TECH is {frame.dpr_tech!r}, not IFU")
    dpr_type = str(frame.dpr_type or "")
    for rule in OCA_RULES:
        if frame.dpr_catg not in rule.catgs:
            continue
        matches = dpr_type == rule.type_equals if rule.type_equals else all(s in dpr_type for s in rule.type_contains)
        if not matches:
            continue
        if rule.min_nexp and (frame.tpl_nexp or 0) < rule.min_nexp:
            return Classification(
                None, f"{rule.tag} template has ESO TPL NEXP = {frame.tpl_nexp}, the pipeline needs >= {rule.min_nexp}"
            )
        return Classification(rule.tag, f"DPR {frame.dpr_catg}/{dpr_type}/IFU")
    return Classification(None, f"no OCA rule for DPR {frame.dpr_catg}/{dpr_type}")
