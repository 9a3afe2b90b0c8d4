"""A Notion workspace export ("Markdown & CSV") as an import source.

Notion's export is a zip (large workspaces: a zip of zips, ``Export-…-Part-1.zip``) in which
every page is ``Page Title <32 hex page id>.md``, its sub-pages in a folder of the same name, and
every database ``Name <id>.csv`` (newer exports add ``Name <id>_all.csv`` with every row) beside
a folder ``Name <id>/`` holding one ``Row title <row page id>.md`` per row. Each page is a note,
its id taken from the file name, so a later export of the same workspace updates the same notes.
A database row without its own page file becomes a note of its cells.

A page's ``created`` is its last edit time when the export says it (the row's ``Last edited
time`` property, in the page or its database's CSV), else the zip entry's time. Notion writes
times in the exporting user's time zone without saying which; they are read as UTC.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from constellation.errors import ImportSourceError
from phases.imports.sync import Document, Entry

_NAMED = re.compile(r"^(?P<title>.*?)\s*(?P<id>[0-9a-f]{32})(?P<all>_all)?$")
_EDITED = ("last edited time", "last edited", "edited", "updated", "last updated")
_CREATED = ("created time", "created", "date created")
_DATE_FORMATS = (
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y %H:%M",
    "%B %d, %Y",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M",
)
#: nested export parts (zips in the zip, at any depth) are unpacked up to this many bytes in
#: all, and this many entries are looked at in all: an export past either is refused by name
MAX_NESTED_BYTES = 16 * 1024**3
MAX_ENTRIES = 1_000_000
#: a database's CSV is read whole (its rows become notes): one larger is skipped and named
MAX_CSV_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class _Page:
    entry: Entry
    text: str
    created: int


class NotionSource:
    """The pages (and database rows) of one Notion export zip."""

    kind = "notion"
    marker: str | None = None

    def __init__(self, export: Path, *, max_bytes: int | None = None) -> None:
        """Read the export's pages; a page over ``max_bytes`` is listed with its size, not
        read (the import skips it by that size)."""
        self.max_bytes = max_bytes
        self.path = Path(export).expanduser().resolve()
        if not self.path.is_file():
            raise ImportSourceError(
                f"no export at {self.path}",
                "give the .zip Notion made (Settings → Export, format Markdown & CSV)",
            )
        self.location = str(self.path)
        self._pages: dict[str, _Page] = {}
        #: inner zips that could not be read: listed so the import names them as skipped
        self._bad: list[Entry] = []
        self._unpacked = 0
        self._looked_at = 0
        try:
            with zipfile.ZipFile(self.path) as archive, tempfile.TemporaryDirectory() as parts:
                self._read_archive(archive, Path(parts), "")
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportSourceError(
                f"{self.path} is not a readable zip: {exc}",
                "give the .zip Notion made, not an unpacked folder (for that: import folder)",
            ) from exc

    def entries(self) -> list[Entry]:
        pages = [page.entry for page in self._pages.values()]
        return sorted(pages + self._bad, key=lambda e: e.key)

    def read(self, entries: Sequence[Entry]) -> Iterator[Document]:
        for entry in entries:
            page = self._pages[entry.key]
            yield Document(page.entry, page.text, page.created)

    # reading the export -------------------------------------------------------------------
    def _read_archive(self, archive: zipfile.ZipFile, parts: Path, within: str) -> None:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        self._looked_at += len(infos)
        if self._looked_at > MAX_ENTRIES:
            raise ImportSourceError(
                f"{self.path} holds more than {MAX_ENTRIES:,} files (zips in zips counted)",
                "export the workspace in parts and import each",
            )
        rows: dict[str, list[dict[str, str]]] = {}  # database id → rows
        databases: dict[str, tuple[str, PurePosixPath, zipfile.ZipInfo]] = {}
        pages: list[tuple[PurePosixPath, str, str, zipfile.ZipInfo]] = []
        for info in infos:
            path = PurePosixPath(info.filename)
            suffix = path.suffix.lower()
            if suffix == ".zip":
                self._read_part(archive, info, parts, f"{within}{info.filename}")
                continue
            named = _NAMED.match(path.stem)
            if named is None or suffix not in (".md", ".csv"):
                continue  # attachments (images, PDFs) and files Notion did not name
            if suffix == ".md":
                pages.append((path, named["id"], named["title"], info))
            elif named["all"] or named["id"] not in databases:
                # ``_all.csv`` holds every row (the plain one only the view's): it wins
                databases[named["id"]] = (named["title"], path, info)
        for db_id, (_, path, info) in list(databases.items()):
            if info.file_size > MAX_CSV_BYTES:
                self._skip(f"{within}{info.filename}", f"a CSV over {MAX_CSV_BYTES:,} bytes")
                del databases[db_id]
                continue
            rows[db_id] = _csv_rows(archive.read(info), path)
        row_pages: dict[str, set[str]] = {}
        for path, page_id, title, info in pages:
            if self.max_bytes is not None and info.file_size > self.max_bytes:
                # Listed by its size and checksum, never read: the import skips it by size.
                crc = f"zip:{info.CRC:08x}:{info.file_size}"
                entry = Entry(page_id, title or "Untitled", crc, info.file_size)
                self._pages[page_id] = _Page(entry, "", _zip_time(info))
                continue
            text = archive.read(info).decode("utf-8-sig", "replace")
            parent = _NAMED.match(path.parent.name)
            db_rows = rows.get(parent["id"], []) if parent else []
            if parent and parent["id"] in rows:
                row_pages.setdefault(parent["id"], set()).add(title)
            row = next((r for r in db_rows if _title_of(r) == title), None)
            created = _page_time(text, row) or _zip_time(info)
            self._add(page_id, title or "Untitled", text, created)
        for db_id, db_rows in rows.items():
            db_title, _, info = databases[db_id]
            have_pages = row_pages.get(db_id, set())
            for number, row in enumerate(db_rows):
                title = _title_of(row)
                if title in have_pages:
                    continue
                key = f"{db_id}/row/{number}:{title}"
                created = _row_time(row) or _zip_time(info)
                self._add(key, f"{db_title} / {title or 'Untitled'}", _row_text(row), created)

    def _read_part(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, parts: Path, name: str
    ) -> None:
        """An export part (a zip in the zip, at any depth): unpacked to a file, streamed, then
        read like the export; one that cannot be read is skipped and named, the rest read."""
        self._unpacked += info.file_size
        if self._unpacked > MAX_NESTED_BYTES:
            raise ImportSourceError(
                f"{self.path}: its nested zips unpack to more than {MAX_NESTED_BYTES:,} bytes "
                f"(at {name})",
                "export the workspace in parts and import each",
            )
        target = parts / f"part-{len(list(parts.iterdir()))}.zip"
        try:
            with archive.open(info) as packed, target.open("wb") as out:
                shutil.copyfileobj(packed, out, 1 << 20)
            with zipfile.ZipFile(target) as part:
                self._read_archive(part, parts, f"{name}/")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            self._skip(name, f"not a readable zip ({exc})")
        finally:
            target.unlink(missing_ok=True)

    def _skip(self, name: str, why: str) -> None:
        self._bad.append(Entry(f"unreadable/{name}", name, f"unreadable:{why}", problem=why))

    def _add(self, key: str, title: str, text: str, created: int) -> None:
        fingerprint = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        self._pages[key] = _Page(Entry(key, title, fingerprint), text, created)


def _csv_rows(data: bytes, path: PurePosixPath) -> list[dict[str, str]]:
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        return [{k or "": v or "" for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportSourceError(f"database {path} in the export is not a CSV: {exc}") from exc


def _title_of(row: dict[str, str]) -> str:
    """A database row's title: its first column (Notion puts the title property first)."""
    return next(iter(row.values()), "").strip()


def _row_text(row: dict[str, str]) -> str:
    title = _title_of(row)
    cells = [f"{k}: {v}" for k, v in list(row.items())[1:] if v.strip()]
    return "\n".join([f"# {title}", "", *cells]) if cells else f"# {title}"


def _page_time(text: str, row: dict[str, str] | None) -> int | None:
    """The last edit (else creation) time that a page's properties or its CSV row state."""
    properties: dict[str, str] = {}
    for line in text.splitlines()[1:40]:  # properties follow the "# Title" line
        key, sep, value = line.partition(":")
        if sep and key.strip() and len(key) < 40:
            properties[key.strip().lower()] = value.strip()
    return _time_in(properties) or (_row_time(row) if row else None)


def _row_time(row: dict[str, str]) -> int | None:
    return _time_in({k.strip().lower(): v for k, v in row.items()})


def _time_in(properties: dict[str, str]) -> int | None:
    for names in (_EDITED, _CREATED):
        for name in names:
            if name in properties and (parsed := parse_time(properties[name])) is not None:
                return parsed
    return None


def parse_time(value: str) -> int | None:
    """Epoch milliseconds from a time as Notion exports write it (read as UTC), or None."""
    text = value.strip().lstrip("@").strip()
    text = re.sub(r"\s*\(?(UTC|GMT)[^)]*\)?$", "", text)
    for form in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, form)
        except ValueError:
            continue
        return int(parsed.replace(tzinfo=UTC).timestamp() * 1000)
    return None


def _zip_time(info: zipfile.ZipInfo) -> int:
    try:
        return int(datetime(*info.date_time, tzinfo=UTC).timestamp() * 1000)
    except ValueError:  # a zip without times (1980-00-00)
        return 0
