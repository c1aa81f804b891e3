"""A cached index of the primary headers of a raw MUSE archive (SQLite, keyed by path, size, mtime, ctime).

Planning a night reads the same thousands of raw files again and again; their headers do not change. The
index keeps one row per file, with every :class:`~muse_operators.headers.RawFrame` field, so a re-scan of an
unchanged archive only lists the directory and compares stat results. Files that could not be read keep
their reason in the table, so they are reported on every scan (never silently skipped) without being
re-read until they change.

Cold reads bypass ``fits.getheader`` (~4 ms for a 1000-card ESO header, 40 s for 10,000 files): the primary
header is read as raw 2880-byte blocks up to the END card (gzip-decompressed for ``.fits.gz``; the primary
HDU of a ``.fits.fz`` file is not compressed), and only the cards of :data:`KEYWORDS` are parsed. Any card
this fast parser does not fully understand (long strings with CONTINUE, complex values, malformed values,
record-valued cards) makes it fall back to astropy's own ``Header.fromstring`` for that file, so values
always equal what :func:`muse_operators.headers.read_frame` returns.

The database is WAL-mode SQLite, so a scheduled DAG and a manual run may scan at the same time: readers
never block, writers serialise on the write lock (``busy_timeout``). Keep it on a local disk (WAL does not
work over NFS).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astropy.io import fits
from astropy.table import MaskedColumn, Table

from .fast_fits import live_ifus as fast_live_ifus
from .headers import KEYWORDS, RAW_SUFFIXES, RawFrame, ScanResult, check_value_types, live_ifus

SCHEMA_VERSION = 2  # bump when the row layout or the meaning of a stored value changes
FIELDS = [f.name for f in dataclasses.fields(RawFrame) if f.name not in ("path", "ifus")]
_SQL_TYPES = {"float": "REAL", "int": "INTEGER", "str": "TEXT"}
FIELD_TYPES = {f.name: str(f.type).split("|")[0].strip() for f in dataclasses.fields(RawFrame) if f.name in FIELDS}
# The fingerprint also covers the keyword map and the field types, so a change there rebuilds the cache even
# if nobody bumped SCHEMA_VERSION.
SCHEMA = f"{SCHEMA_VERSION}:" + hashlib.sha256(repr((sorted(KEYWORDS.items()), FIELD_TYPES)).encode()).hexdigest()[:16]
# A file modified within this long before a scan may be modified again with the same size and (coarse,
# per-tick) mtime; such rows are re-read on the next scan instead of trusted ("racily clean", as in git).
RACY_NS = 2_000_000_000
_CHUNK = 2880 * 16
_END = re.compile(rb"END {77}")
_VALUE = re.compile(  # value field of a card, after '=': string, logical, integer, real or undefined
    rb" *(?:'(?P<s>(?:[ -&(-~]|'')*)'|(?P<b>[TF])|(?P<i>[+-]?[0-9]+)|(?P<f>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
    rb"(?:[EeDd][+-]?[0-9]+)?)|) *(?:/.*)?")
_RVKC = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*: ")  # astropy reads 'a.b: 1' in a short-keyword card as a record


def _card_key(keyword: str) -> tuple[bytes, bool]:
    """The literal a card starts with: ``HIERARCH ESO DPR CATG`` (then spaces, '='), or ``MJD-OBS =``."""
    if keyword.startswith("HIERARCH "):
        return keyword.encode("ascii"), True
    return keyword.ljust(8).encode("ascii") + b"=", False


_CARD_KEYS = {attr: _card_key(keyword) for keyword, attr in KEYWORDS.items()}


class _NeedsAstropy(Exception):
    """A card the fast parser does not handle; the whole header is then parsed by astropy."""


def primary_header_bytes(path: str) -> bytes:
    """The primary header's cards before END, read block-wise (nothing after the header is read)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        data = stream.read(_CHUNK)
        if not data:
            raise ValueError("empty file")
        if not data.startswith(b"SIMPLE  ="):
            raise ValueError("not a FITS file: it does not start with a SIMPLE card")
        pos = 0
        while True:
            match = _END.search(data, pos)
            if match is None:
                more = stream.read(_CHUNK)
                if not more:
                    raise ValueError("no END card in the primary header (truncated file?)")
                pos = max(pos, len(data) // 80 * 80 - 80)
                data += more
            elif match.start() % 80:  # "END" inside a card, not a card of its own
                pos = (match.start() // 80 + 1) * 80
            else:
                return data[: match.start()]


def _find_card(header: bytes, literal: bytes, hierarch: bool) -> int:
    """Offset of the first card (80-byte aligned) with this keyword, or -1."""
    pos = 0
    while (at := header.find(literal, pos)) >= 0:
        if at % 80:
            pos = (at // 80 + 1) * 80
            continue
        if not hierarch or header[at + len(literal): at + 80].lstrip(b" ").startswith(b"="):
            return at
        pos = at + 80
    return -1


def _fast_value(card: bytes, hierarch: bool) -> Any:
    """The card's value as astropy would return it, or :class:`_NeedsAstropy`."""
    match = _VALUE.fullmatch(card, card.index(b"=") + 1)
    if match is None:
        raise _NeedsAstropy
    if match["s"] is not None:
        value = match["s"].decode("latin-1").replace("''", "'").rstrip()
        if value.endswith("&") or (not hierarch and _RVKC.match(value)):
            raise _NeedsAstropy  # CONTINUE long string / record-valued keyword card
        return value
    if match["b"] is not None:
        return match["b"] == b"T"
    if match["i"] is not None:
        return int(match["i"])
    if match["f"] is not None:
        return float(match["f"].replace(b"D", b"E").replace(b"d", b"e"))
    return None


def parse_keywords(header: bytes) -> dict[str, Any]:
    """RawFrame attribute → value of the first card of each KEYWORDS keyword (None when absent)."""
    try:
        values = {}
        for attr, (literal, hierarch) in _CARD_KEYS.items():
            at = _find_card(header, literal, hierarch)
            values[attr] = None if at < 0 else _fast_value(header[at: at + 80], hierarch)
        return values
    except _NeedsAstropy:
        parsed = fits.Header.fromstring(header.decode("latin-1") + "END".ljust(80))
        return {attr: parsed.get(keyword) for keyword, attr in KEYWORDS.items()}


def _coerce(attr: str, value: Any) -> Any:
    """A value in RawFrame's annotated type where that loses nothing, so SQLite stores and returns it alike."""
    kind = FIELD_TYPES[attr]
    if value is None or isinstance(value, fits.card.Undefined):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return str(value)  # logical or complex where a number or text is expected: kept as its text
    if kind == "float" and not isinstance(value, str):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return str(value)  # beyond SQLite's integers
    return str(value) if kind == "str" else value


def read_file(path: str, with_ifus: bool) -> dict[str, Any]:
    """One file's row: the coerced KEYWORDS values, or the reason it cannot be read (never raises)."""
    row: dict[str, Any] = {"error": None, "ifus": None, "ifus_error": None}
    try:
        values = parse_keywords(primary_header_bytes(path))
        check_value_types(values)
        row.update({attr: _coerce(attr, value) for attr, value in values.items()})
    except Exception as exc:  # noqa: BLE001 - any failure is this file's reason, reported by name
        return {**row, "error": f"{exc.__class__.__name__}: {exc}"}
    if with_ifus:
        try:
            row["ifus"] = ",".join(str(ifu) for ifu in _ifus(path))
        except Exception as exc:  # noqa: BLE001
            row["ifus_error"] = f"{exc.__class__.__name__}: {exc}"
    return row


def _ifus(path: str) -> list[int]:
    """Live IFUs by the block walker (fast); astropy for .gz files and whatever the walker refuses."""
    if not path.endswith(".gz"):
        try:
            return fast_live_ifus(path)
        except (ValueError, KeyError, OSError):
            pass
    return live_ifus(Path(path))


def _walk(root: str, unreadable: list[tuple[str, str]]) -> Iterator[tuple[str, os.stat_result]]:
    """(path, stat) of every raw-named file under root; directories and files that fail are reported."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.name.endswith(RAW_SUFFIXES):
                            st = entry.stat()  # follows symlinks: a dangling link is reported, not skipped
                            if stat.S_ISREG(st.st_mode):
                                yield entry.path, st
                    except OSError as exc:
                        unreadable.append((entry.path, f"{exc.__class__.__name__}: {exc}"))
        except OSError as exc:
            unreadable.append((directory, f"{exc.__class__.__name__}: {exc}"))


def _gone(path: str) -> bool:
    """True only when the file is known not to exist (a permission error is not proof of deletion)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _sort_key(path: str) -> list[str]:
    return path.split(os.sep)  # the order of headers.scan (sorted Path objects), not plain string order


class HeaderIndex:
    """The header table of raw archives, cached in one SQLite file (several raw directories may share it)."""

    def __init__(self, db_path: str | os.PathLike[str], timeout_s: float = 60.0) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.db_path, timeout=timeout_s, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last commit on power loss is fine
        self.reads = 0  # files read since this object was made
        self.last_read: list[str] = []  # files (re-)read by the last scan: empty when the cache was valid
        self.last_dropped = 0  # rows of deleted files removed by the last scan
        self._migrate()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HeaderIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        """Create the table, or drop and recreate it when it was written by another schema (stale rows)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            stored = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if stored is None or stored[0] != SCHEMA:
                columns = ", ".join(f"{name} {_SQL_TYPES.get(FIELD_TYPES[name], 'BLOB')}" for name in FIELDS)
                self._db.execute("DROP TABLE IF EXISTS frames")
                self._db.execute(
                    "CREATE TABLE frames (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
                    " ctime_ns INTEGER NOT NULL, listed_ns INTEGER NOT NULL, error TEXT, ifus TEXT, ifus_error TEXT,"
                    f" {columns}) WITHOUT ROWID")
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _rows(self, root: str, columns: str) -> sqlite3.Cursor:
        """Rows under root: a range on the primary key, so other directories' rows cost nothing."""
        prefix = root if root.endswith(os.sep) else root + os.sep
        return self._db.execute(f"SELECT {columns} FROM frames WHERE path >= ? AND path < ?",
                                (prefix, prefix[:-1] + chr(ord(os.sep) + 1)))

    def scan(self, raw_dir: str | os.PathLike[str], with_ifus: bool = False) -> ScanResult:
        """Every raw file under raw_dir as in headers.scan, reading only files new or changed since last time."""
        root = os.path.abspath(raw_dir)
        if not os.path.isdir(root):  # an unmounted archive must not empty the cache
            raise NotADirectoryError(f"raw directory {root} does not exist or is not a directory")
        listed_ns = time.time_ns()
        walk_errors: list[tuple[str, str]] = []
        on_disk = {path: (st.st_size, st.st_mtime_ns, st.st_ctime_ns) for path, st in _walk(root, walk_errors)}
        cached = {path: (size, mtime, ctime, listed, ifus_missing) for path, size, mtime, ctime, listed, ifus_missing
                  in self._rows(root, "path, size, mtime_ns, ctime_ns, listed_ns,"
                                      " error IS NULL AND ifus IS NULL AND ifus_error IS NULL")}
        stale = []
        for path, facts in on_disk.items():
            row = cached.get(path)
            if row is None or row[:3] != facts or facts[1] >= row[3] - RACY_NS or (with_ifus and row[4]):
                stale.append(path)
        gone = [path for path in cached if path not in on_disk and _gone(path)]
        rows = {path: read_file(path, with_ifus) for path in stale}
        self.reads += len(stale)
        self.last_read, self.last_dropped = sorted(stale, key=_sort_key), len(gone)
        if rows or gone:
            self._write(rows, on_disk, listed_ns, gone)
        return self._result(root, on_disk, with_ifus, walk_errors, rows)

    def _write(self, rows: dict[str, dict[str, Any]], on_disk: dict[str, tuple[int, int, int]],
               listed_ns: int, gone: list[str]) -> None:
        names = ["path", "size", "mtime_ns", "ctime_ns", "listed_ns", "error", "ifus", "ifus_error", *FIELDS]
        sql = (f"INSERT OR REPLACE INTO frames ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})")
        values = [(path, *on_disk[path], listed_ns, *(row.get(name) for name in names[5:]))
                  for path, row in rows.items()]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(sql, values)
            self._db.executemany("DELETE FROM frames WHERE path = ?", [(path,) for path in gone])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _result(self, root: str, on_disk: dict[str, Any], with_ifus: bool, unreadable: list[tuple[str, str]],
                fresh: dict[str, dict[str, Any]]) -> ScanResult:
        """The stored rows of the files this scan listed (a concurrent scan may have stored newer ones)."""
        frames = []
        for path, error, ifus, ifus_error, *values in self._rows(root, "path, error, ifus, ifus_error, "
                                                                       + ", ".join(FIELDS)):
            if path not in on_disk:
                continue
            if with_ifus and error is None and ifus is None and ifus_error is None:  # a concurrent scan
                again = fresh.get(path) or read_file(path, True)  # without IFUs replaced the row: not [] then
                ifus, ifus_error = again["ifus"], again["ifus_error"] or again["error"]
            if error is not None or (with_ifus and ifus_error is not None):
                unreadable.append((path, error or ifus_error))
                continue
            frame = RawFrame(path, **dict(zip(FIELDS, values, strict=True)))
            if with_ifus and ifus:
                frame.ifus = [int(ifu) for ifu in ifus.split(",")]
            frames.append(frame)
        frames.sort(key=lambda frame: _sort_key(frame.path))
        unreadable.sort(key=lambda item: _sort_key(item[0]))
        return ScanResult(frames, unreadable)

    def table(self, raw_dir: str | os.PathLike[str], with_ifus: bool = False) -> Table:
        """The scan as an astropy Table for printing (one row per file; ``unreadable`` holds the reason)."""
        result = self.scan(raw_dir, with_ifus)
        rows = [{**dataclasses.asdict(f), "unreadable": ""} for f in result.frames]
        rows += [{"path": path, "unreadable": reason} for path, reason in result.unreadable]
        rows.sort(key=lambda row: _sort_key(row["path"]))
        names = ["filename", *FIELDS, *(["ifus"] if with_ifus else []), "unreadable", "path"]
        for row in rows:
            row["filename"] = os.path.basename(row["path"])
            row["ifus"] = ",".join(str(ifu) for ifu in row.get("ifus") or [])
        return Table([_column(name, [row.get(name) for row in rows]) for name in names])


def default_index_path() -> Path:
    """``$MUSE_HEADER_INDEX``, else ``$AIRFLOW_HOME/muse_header_index.sqlite``: where the DAGs keep the index."""
    configured = os.environ.get("MUSE_HEADER_INDEX")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "muse_header_index.sqlite"


def _column(name: str, values: list[Any]) -> MaskedColumn:
    """A typed column with missing values masked (object dtype only if a field holds mixed types)."""
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    if kinds and kinds <= {int, float} and (float in kinds or FIELD_TYPES.get(name) == "float"):
        return MaskedColumn([0.0 if v is None else v for v in values], name=name, dtype=float,
                            mask=[v is None for v in values])
    if kinds == {int}:
        return MaskedColumn([0 if v is None else v for v in values], name=name, dtype=int,
                            mask=[v is None for v in values])
    if kinds <= {str}:
        return MaskedColumn(["" if v is None else v for v in values], name=name, dtype=str,
                            mask=[v is None for v in values])
    return MaskedColumn(values, name=name, dtype=object)
