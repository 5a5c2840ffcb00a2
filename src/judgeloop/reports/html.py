"""A self-contained HTML page: inline CSS, tables and SVG figures, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #1a202c; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f7fafc; } .figures { display: flex; flex-wrap: wrap; gap: 1.5rem; }
.note { color: #4a5568; font-size: 0.9rem; }
"""


def table_html(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table with every cell escaped."""
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_page(title: str, sections: Sequence[tuple[str, str]], note: str = "") -> str:
    """A whole page; each section is (heading, trusted HTML built by this package)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if note:
        parts.append(f"<p class='note'>{escape(note)}</p>")
    for heading, content in sections:
        parts.append(f"<h2>{escape(heading)}</h2>{content}")
    parts.append("</body></html>")
    return "".join(parts)
