"""Read ESO archive association files (CalSelector ``*_raw2raw.xml`` / ``*_raw2master.xml``) as trees.

The archive delivers, next to each science file, an XML tree saying which calibrations it chose for it and
which calibration needs which (a sky flat's biases sit under the sky flat). MUSEreduce searched these
files as plain text for file names; a name inside a comment or a message then counted, and the
structure was lost. Here the tree is parsed (with defusedxml: the files come from the network) and kept.

Format facts (real sample: astropy/astroquery ``astroquery/eso/tests/data/FORS2.2021-01-02T00:59:12.533_raw2raw.xml``):
``<association>`` has ``category`` (the archive's RAW_TYPE, e.g. ``FLAT_SKY``), ``certified``, ``complete``,
``type`` and, at the root only, ``mode`` (``Raw2Raw``/``Raw2Master``); nested ones carry ``match``
(``calib_plan``, or ``N/A`` for static calibrations). ``<mainFiles>`` lists ``<file category name>``:
the category is the archive's DO_CLASS, the name the archive name without ``.fits``/``.fits.fz``.
The archive tags say WHICH files belong to a science frame; the pipeline tag still comes from the FITS
header (:mod:`muse_operators.classify`).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DefusedET

from ..errors import MuseAirflowError

# Longest first: ".fits" must not cut ".fits.fz" short. ".fits.Z" is how the archive ships old files.
FITS_SUFFIXES = (".fits.fz", ".fits.gz", ".fits.Z", ".fits")
XML_KINDS = ("raw2raw", "raw2master")

# Archive file categories (CalSelector DO_CLASS) -> pipeline tags. DATA for cross-checks and display only:
# the tag given to esorex is always the header classification. For MUSE the archive classifies with the
# pipeline's own OCA rules, so the names are the pipeline tags. Seen in real MUSE association files as read
# by mifumagalli/mypython ifu/muse_redux_basic.py: OBJECT BIAS DARK FLAT ARC SKYFLAT STD and the static
# BADPIX_TABLE LINE_CATALOG VIGNETTING_MASK EXTINCT_TABLE STD_FLUX_TABLE GEOMETRY_TABLE ASTROMETRY_WCS.
# The rest are assumed from reflex/muse_wkf.oca and the recipes' PRO.CATG (no public MUSE file shows them).
ARCHIVE_CATEGORY_TAGS: dict[str, str] = {
    # raw frames
    "OBJECT": "OBJECT", "SKY": "SKY", "BIAS": "BIAS", "DARK": "DARK", "FLAT": "FLAT", "ARC": "ARC",
    "SKYFLAT": "SKYFLAT", "ILLUM": "ILLUM", "STD": "STD", "ASTROMETRY": "ASTROMETRY", "MASK": "MASK",
    # processed masters (M.MUSE...) and static calibrations
    "MASTER_BIAS": "MASTER_BIAS", "MASTER_DARK": "MASTER_DARK", "MASTER_FLAT": "MASTER_FLAT",
    "TRACE_TABLE": "TRACE_TABLE", "WAVECAL_TABLE": "WAVECAL_TABLE", "LSF_PROFILE": "LSF_PROFILE",
    "TWILIGHT_CUBE": "TWILIGHT_CUBE", "STD_RESPONSE": "STD_RESPONSE", "STD_TELLURIC": "STD_TELLURIC",
    "GEOMETRY_TABLE": "GEOMETRY_TABLE", "ASTROMETRY_WCS": "ASTROMETRY_WCS", "BADPIX_TABLE": "BADPIX_TABLE",
    "LINE_CATALOG": "LINE_CATALOG", "VIGNETTING_MASK": "VIGNETTING_MASK", "EXTINCT_TABLE": "EXTINCT_TABLE",
    "STD_FLUX_TABLE": "STD_FLUX_TABLE", "FILTER_LIST": "FILTER_LIST", "SKY_LINES": "SKY_LINES",
    "ASTROMETRY_REFERENCE": "ASTROMETRY_REFERENCE",
}


class AssociationError(MuseAirflowError, ValueError):
    """An association file that cannot be read, is not well-formed, or is not an association tree."""


@dataclass(frozen=True)
class FileRef:
    """One ``<file>`` of a ``<mainFiles>`` list: archive name (no suffix) and archive category."""

    name: str
    category: str


@dataclass(frozen=True)
class Association:
    """One ``<association>`` element: its own files and the associations (calibrations) they need."""

    category: str
    certified: bool | None
    complete: bool | None
    type: str | None
    match: str | None  # nested only: "calib_plan", "N/A" (static calibration), ...
    mode: str | None  # root only: "Raw2Raw" or "Raw2Master"
    files: tuple[FileRef, ...]
    messages: tuple[str, ...]
    children: tuple[Association, ...]
    source: str | None = None  # the XML file, set on the root

    @property
    def main_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    def walk(self) -> Iterator[tuple[tuple[int, ...], tuple[Association, ...]]]:
        """Depth-first, document order: (child-index path, chain of associations from the root down)."""
        stack: list[tuple[tuple[int, ...], tuple[Association, ...]]] = [((), (self,))]
        while stack:
            index_path, chain = stack.pop()
            yield index_path, chain
            kids = chain[-1].children
            stack.extend(((*index_path, i), (*chain, kids[i])) for i in reversed(range(len(kids))))

    def all_messages(self) -> list[str]:
        """Every message in the tree, prefixed with where it was found, so incompleteness can be explained."""
        return [f"{'/'.join(a.category for a in chain)}: {m}" for _, chain in self.walk() for m in chain[-1].messages]

    def incomplete_parts(self) -> list[str]:
        """Category paths of every association that says ``complete="false"``."""
        return ["/".join(a.category for a in chain) for _, chain in self.walk() if chain[-1].complete is False]


@dataclass(frozen=True)
class Placement:
    """One place a file is listed: which association, how deep, and which files that association serves."""

    path: tuple[str, ...]  # association categories from the root down, e.g. ("SCIENCE", "SKYFLAT", "BIAS")
    index_path: tuple[int, ...]  # child indices; tells apart repeated categories (three STD blocks)
    category: str
    match: str | None
    certified: bool | None
    needed_by: tuple[str, ...]  # archive names of the parent association's main files

    @property
    def depth(self) -> int:
        """0: a main (science) file; 1: needed by the science file itself; 2+: needed by a calibration."""
        return len(self.index_path)


@dataclass(frozen=True)
class AssociatedFile:
    """A distinct file of the tree with every place it appears."""

    name: str
    placements: tuple[Placement, ...]

    @property
    def category(self) -> str:
        return self.placements[0].category

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.category for p in self.placements))

    @property
    def direct(self) -> bool:
        """True if the science file itself needs it (depth 1), not only another calibration."""
        return any(p.depth == 1 for p in self.placements)

    @property
    def is_master(self) -> bool:
        """Processed archive products (masters, static calibrations) are named ``M.<INSTRUMENT>...``."""
        return self.name.startswith("M.")

    @property
    def needed_by(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for p in self.placements for n in p.needed_by))


def archive_name(path: str | Path) -> str:
    """The archive name of a file: directory and FITS suffix removed, ``M.`` prefix kept.

    Names without a FITS suffix are returned unchanged, so the function is idempotent and accepts
    the names written in the XML (``MUSE.2024-01-01T01:02:03.456`` ends in ``.456``, not a suffix).
    """
    name = Path(path).name
    for suffix in FITS_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def association_files_for(science_path: str | Path, existing_only: bool = True) -> list[Path]:
    """The association XML files of a raw file: ``<archive name>_raw2raw.xml`` and ``_raw2master.xml``.

    They sit next to the raw file. MUSEreduce cut a fixed 8 characters (``.fits.fz``), which broke
    plain ``.fits`` names; here the real suffix is removed. With ``existing_only`` (default) only
    files that exist are returned, raw2raw first.
    """
    path = Path(science_path)
    if not path.name.endswith(FITS_SUFFIXES):
        raise AssociationError(
            f"{path}: not a raw FITS file name (expected {', '.join(FITS_SUFFIXES)}); "
            "association files are named after the raw file, give the science file's path"
        )
    stem = archive_name(path)
    candidates = [path.with_name(f"{stem}_{kind}.xml") for kind in XML_KINDS]
    return [c for c in candidates if c.is_file()] if existing_only else candidates


def parse_association(path: str | Path) -> Association:
    """Parse one association file into an :class:`Association` tree (the root).

    Raises :class:`AssociationError` naming the file for unreadable files, malformed XML, a root that
    is not ``<association>``, and DTD/entity declarations (entity-expansion attacks: real archive
    files have no DTD, so any is refused rather than expanded).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AssociationError(f"{path}: cannot read the association file ({exc.strerror or exc})") from exc
    try:
        root = DefusedET.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise AssociationError(
            f"{path}: refused, it declares a DTD or entities ({exc.__class__.__name__}), which real ESO "
            "association files never do; this may be an entity-expansion attack. Re-download it from the archive."
        ) from exc
    except ParseError as exc:
        hint = (" It looks like a multipart HTTP response holding several XML files; save each part separately."
                if data.lstrip().startswith(b"--") else " Re-download it from the ESO archive.")
        raise AssociationError(f"{path}: not well-formed XML ({exc}).{hint}") from exc
    if root.tag != "association":
        hint = (" This is a CalSelector VOTable response, not the association tree; request the XML format."
                if root.tag.endswith("VOTABLE") else "")
        raise AssociationError(f"{path}: root element is <{root.tag}>, expected <association>.{hint}")
    try:
        return _association(root, path, "association", is_root=True)
    except RecursionError as exc:
        raise AssociationError(f"{path}: associations nested too deeply to be a real archive file") from exc


def flatten(association: Association, include_main: bool = False) -> list[AssociatedFile]:
    """Each distinct file of the tree once, in first-appearance order, with every place it appears.

    The root's main files (the science frames) are left out unless ``include_main``.
    """
    places: dict[str, list[Placement]] = {}
    for index_path, chain in association.walk():
        node = chain[-1]
        if not index_path and not include_main:
            continue
        needed_by = chain[-2].main_names if len(chain) > 1 else ()
        for ref in node.files:
            places.setdefault(ref.name, []).append(Placement(
                path=tuple(a.category for a in chain), index_path=index_path, category=ref.category,
                match=node.match, certified=node.certified, needed_by=needed_by,
            ))
    return [AssociatedFile(name, tuple(p)) for name, p in places.items()]


def category_tag(category: str) -> str:
    """The pipeline tag an archive category corresponds to; unknown categories are returned as they are."""
    return ARCHIVE_CATEGORY_TAGS.get(category, category)


def category_conflicts(files: list[AssociatedFile], header_tags: Mapping[str, str | None]) -> list[str]:
    """Files whose archive category disagrees with the tag their FITS header gives (header wins).

    ``header_tags`` maps archive names (see :func:`archive_name`) to the classification tag, or None
    when the header could not be classified. Files absent from it (not downloaded) are not reported.
    """
    problems = []
    for f in files:
        if f.name not in header_tags:
            continue
        tag = header_tags[f.name]
        expected = {category_tag(c) for c in f.categories}
        if tag not in expected:
            problems.append(
                f"{f.name}: the archive lists it as {'/'.join(f.categories)}, its FITS header classifies it "
                f"as {tag}; the header tag is used. Check the file if this is unexpected."
            )
    return problems


def _flag(element: Element, attr: str, path: Path) -> bool | None:
    value = element.get(attr)
    if value is None:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise AssociationError(f"{path}: <association category={element.get('category')!r}> has {attr}={value!r}, "
                           "expected 'true' or 'false'")


def _messages(element: Element | None) -> tuple[str, ...]:
    """Message texts. Real files in hand only show ``<messages/>``: any child's text (or its attributes
    when it has none) and any direct text are kept, so the format of a non-empty one is not assumed."""
    if element is None:
        return ()
    found = [element.text.strip()] if element.text and element.text.strip() else []
    for child in element:
        text = " ".join(t.strip() for t in child.itertext() if t.strip())
        found.append(text or " ".join(f"{k}={v}" for k, v in child.attrib.items()) or child.tag)
    return tuple(found)


def _association(element: Element, path: Path, where: str, is_root: bool = False) -> Association:
    category = element.get("category")
    if not category:
        raise AssociationError(f"{path}: {where} has no category attribute; the file is not an archive association")
    where = f"{where}[{category}]"
    files = []
    for main in element.findall("mainFiles"):
        for f in main.findall("file"):
            name, fcat = f.get("name"), f.get("category")
            if not name or not fcat:
                raise AssociationError(f"{path}: a <file> in {where} lacks its name or category attribute")
            files.append(FileRef(archive_name(name), fcat))
    children = tuple(
        _association(child, path, f"{where}/association")
        for group in element.findall("associatedFiles") for child in group.findall("association")
    )
    return Association(
        category=category, certified=_flag(element, "certified", path), complete=_flag(element, "complete", path),
        type=element.get("type"), match=element.get("match"), mode=element.get("mode"), files=tuple(files),
        messages=_messages(element.find("messages")), children=children, source=str(path) if is_root else None,
    )
