"""What the ESO archive would deliver with a synthetic night: association XML files and processed masters.

* :func:`write_association_files` writes, next to every science frame, ``<archive name>_raw2raw.xml``
  (the raw calibrations CalSelector picks, nested as the archive nests them: a sky flat's biases,
  flats and arcs sit under the sky flat) and ``_raw2master.xml`` (static calibrations and, when given,
  processed masters), in the structure of the archive's real files (see
  :mod:`muse_operators.associate.xml` for the format and its source).
* :func:`export_eso_masters` turns the per-IFU products of a reduction's calibration steps into
  archive-style processed masters: one ``M.MUSE.<DATE>.fits`` per PRO.CATG with all IFUs merged as
  ``muse_utils_frameset_merge_frames`` writes them (``CHANnn.DATA/DQ/STAT`` images,
  ``CHANnn.LSF_PROFILE``, ``CHANnn`` tables).
  A pool of science frames plus these files is the ``using_ESO_Calibration`` case; the masters are
  real pipeline products, so the science recipes accept them.

XML is written with :mod:`xml.etree.ElementTree` (writing is safe; parsing uses defusedxml).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from astropy.io import fits
from astropy.time import Time

from ..associate.xml import archive_name
from ..products import categorise

# For each calibration kind: what the archive nests under it (what its own reduction needs).
RAW_NEEDS = {"BIAS": (), "FLAT": ("BIAS",), "ILLUM": ("BIAS",), "ARC": ("BIAS", "FLAT"),
             "SKYFLAT": ("BIAS", "FLAT", "ARC"),
             "DARK": ("BIAS",), "STD": ("BIAS", "FLAT", "ARC", "SKYFLAT")}
MERGED_CATEGORIES = ("MASTER_BIAS", "MASTER_DARK", "MASTER_FLAT", "TRACE_TABLE", "WAVECAL_TABLE", "LSF_PROFILE")
SINGLE_CATEGORIES = ("TWILIGHT_CUBE", "STD_RESPONSE", "STD_TELLURIC")


def _association(parent: ET.Element | None, category: str, names: Iterable[tuple[str, str]], match: str | None,
                 mode: str | None = None) -> ET.Element:
    attributes = {"category": category, "certified": "true", "complete": "true"}
    if mode:
        attributes["mode"] = mode
    if match:
        attributes["match"] = match
    attributes["type"] = "main"
    node = ET.Element("association", attributes) if parent is None else ET.SubElement(parent, "association",
                                                                                      attributes)
    main = ET.SubElement(node, "mainFiles")
    for file_category, name in names:
        ET.SubElement(main, "file", {"category": file_category, "name": name})
    ET.SubElement(node, "messages")
    ET.SubElement(node, "associatedFiles")
    return node


def _nest(parent: ET.Element, kind: str, calibrations: Mapping[str, Sequence[str]]) -> None:
    node = _association(parent, kind, [(kind, n) for n in calibrations[kind]], "calib_plan")
    for need in RAW_NEEDS.get(kind, ()):
        if calibrations.get(need):
            _nest(node.find("associatedFiles"), need, calibrations)  # type: ignore[arg-type]


def _write(tree: ET.Element, path: Path) -> Path:
    ET.indent(tree)
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(tree, encoding="utf-8"))
    return path


def write_association_files(raw_dir: Path, manifest: Mapping, statics: Mapping[str, Path],
                            masters: Mapping[str, Path] | None = None) -> list[Path]:
    """Write raw2raw + raw2master XML for every OBJECT/SKY/STD frame of the manifest; return their paths."""
    written = []
    for exposure in manifest["exposures"]:
        night = manifest["nights"][exposure["night"]]
        calibrations = {kind: [archive_name(n) for n in names] for kind, names in night["calibrations"].items()}
        stds = [archive_name(e["file"]) for e in manifest["exposures"] if e["kind"] == "STD"
                and e["night"] == exposure["night"]]
        if stds and exposure["kind"] != "STD":
            calibrations["STD"] = stds
        name = archive_name(exposure["file"])
        root = _association(None, "SCIENCE" if exposure["kind"] != "STD" else "STD",
                            [(exposure["kind"], name)], None, mode="Raw2Raw")
        for kind in ("BIAS", "DARK", "FLAT", "ARC", "SKYFLAT", "ILLUM", "STD"):
            if calibrations.get(kind) and (kind != "STD" or exposure["kind"] != "STD"):
                _nest(root.find("associatedFiles"), kind, calibrations)  # type: ignore[arg-type]
        written.append(_write(root, raw_dir / f"{name}_raw2raw.xml"))
        master_root = _association(None, "SCIENCE", [(exposure["kind"], name)], None, mode="Raw2Master")
        holder = master_root.find("associatedFiles")
        for catg, path in {**statics, **(masters or {})}.items():
            _association(holder, catg, [(catg, archive_name(path))], "N/A" if catg in statics else "calib_plan")
        written.append(_write(master_root, raw_dir / f"{name}_raw2master.xml"))
    return written


# Keywords the pipeline's merge moves from each IFU's primary header into that IFU's extensions
# (EXTKEYS1 in muse_utils_frameset_merge_frames): chip identity, readout ports, QC and DRS values.
_PER_IFU_KEYWORDS = re.compile(r"^(ESO DET (CHIP|OUT\d*) |ESO QC |ESO DRS )")


def _merged_hdus(per_ifu: Mapping[int, Path]) -> list:
    """All IFUs' HDUs of one category in one file: EXTNAME ``CHANnn.<EXTNAME>`` (``CHANnn.DATA``,
    ``CHANnn.LSF_PROFILE``), or ``CHANnn`` for the unnamed tables (TRACE_TABLE, WAVECAL_TABLE).

    Per-IFU keywords move to the IFU's own extensions, as the pipeline's merge does: a recipe reading
    IFU 2 merges the primary header into IFU 2's, and IFU 1's chip name there would fail its checks.
    """
    ifus = sorted(per_ifu)
    hdus: list = []
    for ifu in ifus:
        with fits.open(per_ifu[ifu]) as hdul:
            own = [(k, v, c) for k, v, c in hdul[0].header.cards if _PER_IFU_KEYWORDS.match(k)]
            if not hdus:
                header = hdul[0].header.copy()
                for key in {k for k, _, _ in own} | {"EXTNAME"}:  # EXTNAME: IFU 1's lookup would find the primary
                    header.remove(key, ignore_missing=True, remove_all=True)
                hdus.append(fits.PrimaryHDU(header=header))
            for hdu in hdul[1:]:
                copy = hdu.copy()
                extname = hdu.header.get("EXTNAME", "")
                copy.header["EXTNAME"] = f"CHAN{ifu:02d}.{extname}" if extname else f"CHAN{ifu:02d}"
                for key, value, comment in own:
                    copy.header[f"HIERARCH {key}" if len(key) > 8 else key] = (value, comment)
                hdus.append(copy)
    return hdus


def export_eso_masters(plan_path: Path, dest: Path) -> dict[str, Path]:
    """Publish a finished reduction's calibration products as archive masters in ``dest``; PRO.CATG → path.

    One master per category (the first calibration set of each kind: a synthetic night has one), named
    ``M.MUSE.<DATE-OBS of its first input>.fits`` with ``ARCFILE`` set, as the archive names them.
    """
    plan = json.loads(Path(plan_path).read_text())
    found: dict[str, dict[int, Path]] = {}
    singles: dict[str, Path] = {}
    for step in plan["steps"]:
        made = categorise(Path(step["output_dir"]).glob("*.fits"))
        for catg in step["expected_products"]:
            if not made.get(catg):
                continue
            product = Path(made[catg][0])
            if catg in MERGED_CATEGORIES and step.get("ifu"):
                found.setdefault(catg, {}).setdefault(step["ifu"], product)
            elif catg in SINGLE_CATEGORIES:
                singles.setdefault(catg, product)
    dest.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for catg, per_ifu in sorted(found.items()):
        written[catg] = _publish(dest, catg, _merged_hdus(per_ifu))
    for catg, product in sorted(singles.items()):
        with fits.open(product) as hdul:
            written[catg] = _publish(dest, catg, [h.copy() for h in hdul])
    return written


def _publish(dest: Path, catg: str, hdus: list) -> Path:
    header = hdus[0].header
    mjd = float(header.get("MJD-OBS", 0.0))
    stem = f"M.MUSE.{Time(mjd, format='mjd').isot[:23]}"
    path = dest / f"{stem}_{catg.lower()}.fits"  # one night: distinct names per category
    header["ARCFILE"] = f"{stem}.fits"
    header["HIERARCH ESO PRO CATG"] = catg
    header["INSTRUME"] = "MUSE"
    tmp = path.with_name(path.name + ".part")
    fits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
    tmp.replace(path)
    path.chmod(0o644)
    return path
