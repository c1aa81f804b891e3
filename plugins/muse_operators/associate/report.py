"""Where the ESO archive's association files and the header rules disagree, per exposure and tag.

Both sources are kept: the archive (CalSelector) knows what ESO certified, the rules know what is on
disk and why. A disagreement is information for the user, not an error: the plan uses the rules' choice
unless ``prefer_xml`` asks otherwise, and the report says which one was used.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .rules import Association as RuleAssociation
from .xml import AssociatedFile, archive_name, association_files_for, category_tag, flatten, parse_association

# Tags compared: what a science exposure needs directly (nested calibrations of calibrations are the
# archive's way of saying "the sky flat needs these biases", not a choice for the exposure).
COMPARED_TAGS = ("BIAS", "DARK", "FLAT", "ARC", "SKYFLAT", "ILLUM", "STD",
                 "MASTER_BIAS", "MASTER_DARK", "MASTER_FLAT", "TRACE_TABLE", "WAVECAL_TABLE", "TWILIGHT_CUBE",
                 "LSF_PROFILE", "STD_RESPONSE", "STD_TELLURIC", "ASTROMETRY_WCS")


@dataclass(frozen=True)
class Disagreement:
    exposure: str
    tag: str
    only_rules: tuple[str, ...]
    only_xml: tuple[str, ...]

    def describe(self) -> str:
        parts = []
        if self.only_rules:
            parts.append(f"the header rules chose {', '.join(self.only_rules)}")
        if self.only_xml:
            parts.append(f"the archive association lists {', '.join(self.only_xml)}")
        return f"{Path(self.exposure).name} {self.tag}: " + "; ".join(parts)


def xml_files_for(science_path: str | Path) -> list[AssociatedFile] | None:
    """Every file the archive associated to a raw frame (raw2raw + raw2master), or None if no XML exists."""
    files: list[AssociatedFile] = []
    xml_paths = association_files_for(science_path)
    if not xml_paths:
        return None
    for xml_path in xml_paths:
        files.extend(flatten(parse_association(xml_path)))
    return files


def xml_choice(files: Iterable[AssociatedFile], tag: str) -> set[str]:
    """Archive names the association lists directly for the exposure under ``tag``."""
    return {f.name for f in files if f.direct and any(category_tag(c) == tag for c in f.categories)}


def compare(rules: RuleAssociation, xml_files: list[AssociatedFile]) -> list[Disagreement]:
    """Tags where the set of files chosen by the rules differs from the archive's direct associations.

    Only tags the rules decided are compared: with own calibrations the archive's processed masters are
    not wanted, and a static ASTROMETRY_WCS is chosen with the other statics, not per exposure.
    """
    found = []
    for tag in COMPARED_TAGS:
        choice = rules.choices.get(tag)
        if choice is None:
            continue
        from_rules = {archive_name(p) for p in choice.paths}
        from_xml = xml_choice(xml_files, tag)
        if from_rules != from_xml:
            found.append(Disagreement(rules.exposure.path, tag, tuple(sorted(from_rules - from_xml)),
                                      tuple(sorted(from_xml - from_rules))))
    return found
