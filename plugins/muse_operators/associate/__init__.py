"""Which files belong to a science frame, from the ESO archive's association files (CalSelector XML).

Pure Python, no Airflow: :mod:`.xml` parses ``*_raw2raw.xml`` / ``*_raw2master.xml`` into trees.
"""
from .xml import (
    ARCHIVE_CATEGORY_TAGS,
    FITS_SUFFIXES,
    AssociatedFile,
    Association,
    AssociationError,
    FileRef,
    Placement,
    archive_name,
    association_files_for,
    category_conflicts,
    category_tag,
    flatten,
    parse_association,
)

__all__ = [
    "ARCHIVE_CATEGORY_TAGS",
    "FITS_SUFFIXES",
    "AssociatedFile",
    "Association",
    "AssociationError",
    "FileRef",
    "Placement",
    "archive_name",
    "association_files_for",
    "category_conflicts",
    "category_tag",
    "flatten",
    "parse_association",
]
