"""Tables keep their structure (issue 30): in every format a table comes in, a row is indexed
with its column names, so a figure is tied to its column and period; the hit's snippet shows
the row; irregular tables read as text. Through the real agent, pipeline, index and model."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests import documents as d
from tests.helpers import agent_config, cli, jobs

HEADER = ["Zone", "Sales", "Period"]
ROWS = [["NA", "12553", "January–June 2023"], ["EMEA", "3318", "January–June 2023"],
        ["APAC", "7710", "January–June 2023"]]
EMEA = "Zone: EMEA · Sales: 3318 · Period: January–June 2023"


def _chunks(data: Path) -> dict[str, list[tuple[str, str]]]:
    """file name → [(heading, text)] of its chunks."""
    with sqlite3.connect(data / "index.db") as conn:
        rows = conn.execute("SELECT d.source_name, c.heading, c.text FROM chunks c "
                            "JOIN documents d ON d.id = c.document_id ORDER BY c.ordinal")
        found: dict[str, list[tuple[str, str]]] = {}
        for name, heading, text in rows:
            found.setdefault(name, []).append((heading, " ".join(text.split())))
    return found


def _html_table(path: Path) -> Path:
    cells = "".join(f"<tr>{''.join(f'<td>{c}</td>' for c in row)}</tr>" for row in ROWS)
    path.write_text(
        "<html><head><title>Sales</title></head><body><main><h1>Regional sales</h1>"
        "<p>The figures below are from the regional sales report of the harbour.</p>"
        "<table><caption>Sales by zone</caption><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in HEADER) + f"</tr></thead><tbody>{cells}</tbody>"
        "</table><p>Closing remarks of the harbour sales team follow the table.</p>"
        "</main></body></html>", encoding="utf-8")
    return path


def test_every_format_indexes_a_row_with_its_column_names(tmp_path: Path) -> None:
    """xlsx (a caption row, then a two-row header over merged year cells), ods, csv, docx,
    odt, pptx and HTML tables: each data row is one line naming its columns; the sheet and
    caption name the chunk's heading; a search for a zone and its figure shows that row; an
    irregular Word table (a row starting a column late, a cell spanning two) reads as text."""
    config = agent_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d.write_xlsx(inbox / "sales.xlsx", {"Regions": [
        ["Sales by zone"], HEADER, *ROWS]})
    d.write_xlsx(inbox / "years.xlsx", {"Years": [
        ["", "2023", None, "2024", None], ["Zone", "Sales", "Units", "Sales", "Units"],
        ["NORDIC", "4410", "38", "4721", "41"]]})
    d.write_ods(inbox / "sales.ods", {"Regions": [HEADER, *ROWS]})
    (inbox / "sales.csv").write_text("\n".join(",".join(r) for r in [HEADER, *ROWS]) + "\n",
                                     encoding="utf-8")
    d.write_docx_table(inbox / "sales.docx", "Regional sales", [HEADER, *ROWS],
                       irregular=[["Berth", "Ship", "Arrival"], ["Berth 4 ferry terminal", "",
                                  "Tuesday"], ["7", "Nordlys", "Friday"]])
    d.write_odt_table(inbox / "sales.odt", "Regional sales", [HEADER, *ROWS])
    d.write_pptx_table(inbox / "sales.pptx", "Regional sales", [HEADER, *ROWS])
    _html_table(inbox / "sales.html")
    out = cli(config, "run", "--drain", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    found = {j["original_filename"]: j for j in jobs(config)}
    assert {n: j["status"] for n, j in found.items()} == dict.fromkeys(found, "completed")
    chunks = _chunks(tmp_path / "data")
    for name in ("sales.xlsx", "sales.ods", "sales.csv", "sales.docx", "sales.odt",
                 "sales.pptx", "sales.html"):
        text = " ".join(t for _, t in chunks[name])
        assert EMEA in text, (name, text)
        assert "Zone: NA · Sales: 12553" in text and "Zone: APAC · Sales: 7710" in text, name
    assert chunks["sales.xlsx"][0][0] == "Sheet: Regions › Sales by zone", chunks["sales.xlsx"]
    assert chunks["sales.ods"][0][0] == "Sheet: Regions"
    years = " ".join(t for _, t in chunks["years.xlsx"])
    assert ("Zone: NORDIC · 2023 Sales: 4410 · 2023 Units: 38 · 2024 Sales: 4721 · "
            "2024 Units: 41") in years, years
    docx = " ".join(t for _, t in chunks["sales.docx"])
    assert "Berth 4 ferry terminal" in docx and "Nordlys" in docx, docx
    assert "Closing remarks of the harbour sales team" in docx
    assert "Sales by zone" in " ".join(t for _, t in chunks["sales.html"])

    hits = cli(config, "search", "EMEA sales 3318", "--json", "--type", "xlsx")
    assert hits.returncode == 0, hits.stderr
    top = json.loads(hits.stdout)["results"][0]
    assert top["file"] == "sales.xlsx"
    snippet = top["snippet"].replace("**", "")
    assert snippet.lstrip("…").startswith(EMEA), snippet
