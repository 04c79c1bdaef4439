"""Read the tables of an HTML page as a person would: caption, header row, body rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Table:
    element_id: str | None
    caption: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[Table] = []
        self.headings: list[str] = []
        self._text: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(Table(dict(attrs).get("id")))
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th", "caption"):
            self._text = []
        elif tag in ("h1", "h2", "h3"):
            self._in_heading = True
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text or []).split())
        if tag == "caption":
            self.tables[-1].caption = text
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._row is not None:
            target = self.tables[-1]
            if self._in_head:
                target.header = self._row
            else:
                target.rows.append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag in ("h1", "h2", "h3"):
            self.headings.append(text)
            self._in_heading = False
        if tag in ("td", "th", "caption", "h1", "h2", "h3"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def parse(html: str) -> tuple[list[str], list[Table]]:
    """The page's headings (h1-h3) and its tables, in document order."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    return parser.headings, parser.tables


def table_with_caption(tables: list[Table], caption_start: str) -> Table:
    found = [table for table in tables if table.caption.startswith(caption_start)]
    assert len(found) == 1, f"one table captioned {caption_start!r}: {[t.caption for t in tables]}"
    return found[0]
