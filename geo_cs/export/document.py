"""A report as a list of blocks (headings, paragraphs, figures, tables), written as PDF, Word,
OpenDocument or HTML from the same blocks.

The PDF is laid out here, with matplotlib, on A4 pages that are filled in order: a block that
does not fit the rest of a page starts the next one, a figure shrinks (down to its minimum
height) to use the space left, and a long table is split across pages with its header row
repeated (a narrow long table is set in two columns). Tables are real text at 8.5 pt, figures
are vector drawings; the document's title and language are set (the information dictionary,
the catalog's ``/Lang`` and an XMP packet). matplotlib's PDF writer cannot tag a figure with
alternative text, so each figure's description is printed, as selectable text, under its
caption; the Word and OpenDocument files carry it as the image's alternative text (``descr`` /
``svg:desc``), and HTML as the figure's ``aria-label``.

Example
-------
>>> doc = Document("Testtown", "a test", [Heading("Key figures"), Paragraph("The gap narrowed.")],
...                footer="Contains public sector information")
>>> [type(b).__name__ for b in doc.blocks]
['Heading', 'Paragraph']
"""

from __future__ import annotations

import html as html_lib
import io
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure, FigureBase

from geo_cs.errors import InputError

A4 = (8.27, 11.69)
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 0.6, 0.55, 0.75   # inches
WIDTH = A4[0] - 2 * MARGIN_X
HEIGHT = A4[1] - MARGIN_TOP - MARGIN_BOTTOM
BODY_PT, TABLE_PT, CAPTION_PT, FOOTER_PT = 9.5, 8.5, 8.0, 7.0
LANGUAGE = "en-GB"
FORMATS = ("pdf", "docx", "odt", "html")


@dataclass
class Heading:
    text: str
    level: int = 1       # 1: a section; 2: a subsection


@dataclass
class Paragraph:
    text: str
    style: str = "body"  # "lead" (the answer in words, larger), "body", "note" (smaller, grey)


@dataclass
class Bullets:
    items: list[str]


@dataclass
class FigureBlock:
    """A figure drawn on demand: ``draw(None)`` makes a stand-alone matplotlib Figure (for the
    editable formats and HTML), ``draw(subfigure)`` draws into part of a PDF page."""

    caption: str
    alt: str
    draw: Callable[[FigureBase | None], FigureBase]
    height: float = 5.0        # inches on the page, at the text's width
    min_height: float = 3.5
    size: tuple[float, float] = (7.0, 5.0)   # a stand-alone figure's size (inches)
    #: PNG drawings by dpi: Word and OpenDocument files of one document embed the same picture
    rendered: dict[int, bytes] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class TableBlock:
    caption: str
    frame: pd.DataFrame          # cells as shown (text); the header is the column names
    note: str = ""


Block = Heading | Paragraph | Bullets | FigureBlock | TableBlock


@dataclass
class Document:
    title: str
    subtitle: str
    blocks: list[Block]
    footer: str = ""
    language: str = LANGUAGE
    generated: str = field(default_factory=lambda: date.today().isoformat())

    def headings(self) -> list[str]:
        return [b.text for b in self.blocks if isinstance(b, Heading)]

    def figures(self) -> list[FigureBlock]:
        return [b for b in self.blocks if isinstance(b, FigureBlock)]


def _check_path(path: str | Path, suffix: str) -> Path:
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise InputError(f"{path}: expected a {suffix} file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path.parent}: cannot create the output folder ({exc.strerror})") from exc
    return path


def write_document(doc: Document, path: str | Path, fmt: str | None = None) -> Path:
    """``doc`` as ``fmt`` (default: by the file's extension): pdf, docx, odt or html."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    writers = {"pdf": write_pdf, "docx": write_docx, "odt": write_odt, "html": write_html}
    if fmt not in writers:
        raise InputError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return writers[fmt](doc, path)


def figure_png(block: FigureBlock, dpi: int = 200) -> bytes:
    """A figure block drawn stand-alone, as PNG bytes (drawn once per block and dpi)."""
    if dpi not in block.rendered:
        fig = block.draw(None)
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=dpi)
        finally:
            plt.close(fig)
        block.rendered[dpi] = buffer.getvalue()
    return block.rendered[dpi]


# -- PDF: a small flow layout on A4 pages ------------------------------------------------------

def _wrap(text: str, points: float, width: float = WIDTH) -> list[str]:
    """Lines of ``text`` at ``points`` in ``width`` inches (DejaVu Sans: about 0.55 em a char)."""
    chars = max(20, int(width * 72 / (points * 0.55)))
    return [line for para in text.split("\n") for line in (textwrap.wrap(para, chars) or [""])]


def _line(points: float) -> float:
    return points * 1.38 / 72


_PARAGRAPH = {"lead": (11.0, "#111111"), "body": (BODY_PT, "#222222"), "note": (CAPTION_PT, "#444444")}


@dataclass
class _Placed:
    """A block (or a piece of a table) placed on a page: top and height in inches from the top
    of the text area."""

    block: Block
    top: float
    height: float
    rows: tuple[int, int] = (0, 0)      # a table's rows [start, end)
    columns: int = 1                    # a table set in two columns
    continued: bool = False


#: Column gap of a table set in two columns (inches).
TABLE_GAP = 0.2


def _needed_widths(frame: pd.DataFrame) -> list[float]:
    """Inches each column needs at :data:`TABLE_PT` (its longest cell or header, DejaVu Sans)."""
    em = TABLE_PT / 72
    out = []
    for c in frame.columns:
        cells = [*str(c).split("\n"), *frame[c].astype(str).tolist()]
        out.append(max(len(v) for v in cells) * 0.6 * em + 0.12)
    return out


def _header_lines(frame: pd.DataFrame) -> int:
    """Lines of the header row (a header may break its words over lines with ``\n``)."""
    return max([str(c).count("\n") + 1 for c in frame.columns] or [1])


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with its headers on one line (for the formats that wrap cells themselves)."""
    return frame.astype(str).rename(columns=lambda c: str(c).replace("\n", " "))


def _table_geometry(block: TableBlock) -> tuple[int, float, float]:
    """(columns to set it in, row height, caption height) of a table: a long narrow table is
    set in two columns when its cells fit half the width."""
    half = (WIDTH - TABLE_GAP) / 2
    two = len(block.frame) > 30 and sum(_needed_widths(block.frame)) <= half
    caption = len(_wrap(block.caption, BODY_PT)) * _line(BODY_PT) + 0.08
    return (2 if two else 1), TABLE_PT * 2.0 / 72, caption


def _layout(doc: Document) -> list[list[_Placed]]:
    pages: list[list[_Placed]] = [[]]
    y = 0.0

    def new_page() -> None:
        nonlocal y
        pages.append([])
        y = 0.0

    def room() -> float:
        return HEIGHT - y

    blocks = list(doc.blocks)
    for i, block in enumerate(blocks):
        if isinstance(block, Heading):
            size = 15.0 if block.level == 1 else 12.0
            height = _line(size) + (0.18 if y > 0 else 0.04)
            # keep a heading with what follows it
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            need = height + (following.min_height + 0.8 if isinstance(following, FigureBlock) else 0.6)
            if isinstance(following, Bullets) and following.items:   # at least its first item
                need = max(need, height + len(_wrap(following.items[0], BODY_PT, WIDTH - 0.25))
                           * _line(BODY_PT) + 0.16)
            if room() < need and y > 0:
                new_page()
                height = _line(size)
            pages[-1].append(_Placed(block, y, height))
            y += height
        elif isinstance(block, Paragraph):
            points = _PARAGRAPH[block.style][0]
            height = len(_wrap(block.text, points)) * _line(points) + 0.12
            if room() < height and y > 0:
                new_page()
            pages[-1].append(_Placed(block, y, height))
            y += height
        elif isinstance(block, Bullets):
            # items go on over pages: as many as fit here, the rest on the next
            heights = [len(_wrap(item, BODY_PT, WIDTH - 0.25)) * _line(BODY_PT) + 0.04
                       for item in block.items]
            start = 0
            while start < len(heights):
                end = start
                while end < len(heights) and sum(heights[start:end + 1]) + 0.12 <= room():
                    end += 1
                if end == start:
                    if y > 0:
                        new_page()
                        continue
                    end = start + 1          # one item taller than a page: let it be
                height = sum(heights[start:end]) + 0.12
                pages[-1].append(_Placed(Bullets(block.items[start:end]), y, height))
                y += height
                start = end
        elif isinstance(block, FigureBlock):
            caption = (len(_wrap(block.caption, CAPTION_PT)) + len(_wrap(block.alt, CAPTION_PT - 0.5))) \
                * _line(CAPTION_PT) + 0.15
            if room() < block.min_height + caption and y > 0:
                new_page()
            height = min(block.height, room() - caption)
            pages[-1].append(_Placed(block, y, height + caption))
            y += height + caption + 0.1
        elif isinstance(block, TableBlock):
            columns, row, caption = _table_geometry(block)
            start, n = 0, len(block.frame)
            while True:
                fits = int((room() - caption - row * _header_lines(block.frame) - 0.2) // row) * columns
                if fits < min(n - start, 3 * columns) and y > 0:
                    new_page()
                    continue
                end = min(n, start + max(fits, 1))
                if 0 < n - end < 3 * columns and end - start > 6 * columns:
                    end = n - 3 * columns     # no page of a row or two: carry three over
                per_column = math.ceil((end - start) / columns)
                height = caption + row * (per_column + _header_lines(block.frame)) + 0.15
                pages[-1].append(_Placed(block, y, height, (start, end), columns, start > 0))
                y += height + 0.1
                start = end
                if start >= n:
                    break
                new_page()
    return [page for page in pages if page]


def _cell_widths(frame: pd.DataFrame, width: float = WIDTH) -> list[float]:
    """Each column's share of the table's ``width`` (inches): what it needs, the slack shared
    out evenly; when they need more than there is, the widest (a name column) gives it up."""
    needed = _needed_widths(frame)
    excess = sum(needed) - width
    if excess > 0:
        widest = needed.index(max(needed))
        needed[widest] = max(needed[widest] - excess, 0.5)
    total = sum(needed)
    return [n / total for n in needed]


def _draw_table(sub: FigureBase, rect: tuple[float, float, float, float], frame: pd.DataFrame,
                widths: list[float]) -> None:
    """A table as text on ruled, striped rows (drawn directly: matplotlib's own table measures
    every cell and was most of a report's time)."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    ax = sub.add_axes(rect)
    ax.set_axis_off()
    lines = _header_lines(frame)
    n = len(frame)
    total = n + lines
    ax.set_xlim(0, 1)
    ax.set_ylim(total, 0)
    lefts = [sum(widths[:i]) for i in range(len(widths))]
    numeric = [bool(frame[c].astype(str).str.fullmatch(r"[-+−]?[\d,.]*%?( of [\d,]+)?").all())
               for c in frame.columns]
    stripes = [Rectangle((0, 0), 1, lines)] + [Rectangle((0, lines + r), 1, 1) for r in range(1, n, 2)]
    ax.add_collection(PatchCollection(stripes, facecolors=["#e8eef6"] + ["#f5f5f5"] * (len(stripes) - 1),
                                      edgecolors="none"))
    ax.hlines([0, lines, *range(lines + 1, total + 1)], 0, 1, colors="#bbbbbb", linewidth=0.4)
    ax.vlines([*lefts, 1.0], 0, total, colors="#bbbbbb", linewidth=0.4)
    pad = 0.06 / (rect[2] * A4[0])   # 0.06 inch, in axes units
    for c, name in enumerate(frame.columns):
        x, right = lefts[c] + pad, lefts[c] + widths[c] - pad
        ax.text(right if numeric[c] else x, lines / 2, str(name), ha="right" if numeric[c] else "left",
                va="center", fontsize=TABLE_PT, fontweight="bold", linespacing=1.1, parse_math=False)
        for r, value in enumerate(frame.iloc[:, c].astype(str)):
            ax.text(right if numeric[c] else x, lines + r + 0.5, value, ha="right" if numeric[c] else "left",
                    va="center", fontsize=TABLE_PT, parse_math=False)


Drawer = Callable[[FigureBase, float], None]


def _text_lines(sub: FigureBase, height: float, lines: list[str], points: float, *, x: float = 0.0,
                top: float = 0.0, **style) -> float:
    """Lines of text from ``top`` inches down a row ``height`` inches high; returns the next top."""
    for line in lines:
        sub.text(x / WIDTH, 1 - top / height, line, fontsize=points, va="top", parse_math=False, **style)
        top += _line(points)
    return top


def _drawers(item: _Placed) -> list[tuple[float, Drawer | None]]:
    """The rows (height, how to draw it) that make one placed block."""
    block = item.block
    if isinstance(block, Heading):
        size = 15.0 if block.level == 1 else 12.0
        colour = "#1f3a93" if block.level == 1 else "#111111"
        return [(item.height, lambda sub, h: sub.text(0, 0.02, block.text, fontsize=size, fontweight="bold",
                                                      va="bottom", color=colour, parse_math=False))]
    if isinstance(block, Paragraph):
        points, colour = _PARAGRAPH[block.style]
        return [(item.height, lambda sub, h: _text_lines(sub, h, _wrap(block.text, points), points,
                                                         color=colour))]
    if isinstance(block, Bullets):
        def bullets(sub: FigureBase, h: float) -> None:
            top = 0.0
            for entry in block.items:
                sub.text(0.05 / WIDTH, 1 - top / h, "•", fontsize=BODY_PT, va="top")
                top = _text_lines(sub, h, _wrap(entry, BODY_PT, WIDTH - 0.25), BODY_PT, x=0.25, top=top,
                                  color="#222222") + 0.04
        return [(item.height, bullets)]
    if isinstance(block, FigureBlock):
        caption, alt = _wrap(block.caption, CAPTION_PT), _wrap(block.alt, CAPTION_PT - 0.5)
        text_h = (len(caption) + len(alt)) * _line(CAPTION_PT) + 0.15

        def captions(sub: FigureBase, h: float) -> None:
            top = _text_lines(sub, h, caption, CAPTION_PT, top=0.05, fontweight="bold")
            _text_lines(sub, h, alt, CAPTION_PT - 0.5, top=top, color="#444444", style="italic")
        return [(item.height - text_h, lambda sub, h: block.draw(sub)), (text_h, captions)]
    assert isinstance(block, TableBlock)
    columns, row, caption_h = _table_geometry(block)

    def table(sub: FigureBase, h: float) -> None:
        title = block.caption + (" (continued)" if item.continued else "")
        _text_lines(sub, h, _wrap(title, BODY_PT), BODY_PT, fontweight="bold")
        start, end = item.rows
        chunk = block.frame.iloc[start:end]
        per_column = math.ceil(len(chunk) / columns)
        gap = TABLE_GAP
        col_w = (WIDTH - gap * (columns - 1)) / columns
        widths = _cell_widths(block.frame, col_w)
        for c in range(columns):
            part = chunk.iloc[c * per_column:(c + 1) * per_column]
            if part.empty:
                continue
            height = row * (len(part) + _header_lines(block.frame))
            left = c * (col_w + gap)
            _draw_table(sub, (left / WIDTH, 1 - (caption_h + height) / h, col_w / WIDTH, height / h), part,
                        widths)
        if block.note and end >= len(block.frame):
            below = caption_h + row * (per_column + _header_lines(block.frame)) + 0.04
            sub.text(0, 1 - below / h, block.note, fontsize=CAPTION_PT, parse_math=False,
                     va="top", color="#444444")
    return [(item.height, table)]


def _render_page(doc: Document, placed: list[_Placed], number: int, total: int) -> Figure:
    """One A4 page: the placed blocks as rows of subfigures over the text area (the charts and
    the map inside them are laid out by the page's constrained-layout engine), and the footer."""
    W, H = A4
    # the layout engine only where a chart or map needs it (it draws the page twice)
    charts = any(isinstance(item.block, FigureBlock) for item in placed)
    fig = plt.figure(figsize=A4, layout="constrained" if charts else None)
    if charts:
        fig.get_layout_engine().set(rect=(MARGIN_X / W, MARGIN_BOTTOM / H, WIDTH / W, HEIGHT / H),
                                    w_pad=0.02, h_pad=0.0, hspace=0.0, wspace=0.0)
    rows: list[tuple[float, Drawer | None]] = []
    cursor = 0.0
    for item in placed:
        if item.top > cursor + 1e-6:
            rows.append((item.top - cursor, None))
        rows += _drawers(item)
        cursor = item.top + item.height
    if HEIGHT - cursor > 1e-6:
        rows.append((HEIGHT - cursor, None))
    rows = [(h, d) for h, d in rows if h > 1e-6]
    heights = [h for h, _ in rows]
    if charts:   # the engine keeps to its rect (the text area)
        grid = fig.add_gridspec(len(rows), 1, height_ratios=heights, hspace=0.0)
        subs = [fig.add_subfigure(grid[i]) for i in range(len(rows))]
    else:        # subfigures follow their grid's ratios only: the margins are rows and columns
        grid = fig.add_gridspec(len(rows) + 2, 3, height_ratios=[MARGIN_TOP, *heights, MARGIN_BOTTOM],
                                width_ratios=[MARGIN_X, WIDTH, MARGIN_X], hspace=0.0, wspace=0.0)
        subs = [fig.add_subfigure(grid[i + 1, 1]) for i in range(len(rows))]
    for sub, (height, drawer) in zip(subs, rows, strict=True):
        if drawer is not None:
            drawer(sub, height)
    footer = f"{doc.title} · {doc.generated} · page {number} of {total}"
    fig.text(MARGIN_X / W, 0.42 / H, footer, fontsize=FOOTER_PT, color="#444444", va="bottom",
             parse_math=False)
    for k, line in enumerate(_wrap(doc.footer, FOOTER_PT - 0.5)):
        fig.text(MARGIN_X / W, (0.30 - k * 0.11) / H, line, fontsize=FOOTER_PT - 0.5, color="#444444",
                 va="bottom", parse_math=False)
    return fig


def _xmp(doc: Document) -> bytes:
    esc = html_lib.escape
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{esc(doc.title)}</rdf:li></rdf:Alt></dc:title>
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{esc(doc.subtitle)}</rdf:li></rdf:Alt></dc:description>
<dc:language><rdf:Bag><rdf:li>{esc(doc.language)}</rdf:li></rdf:Bag></dc:language>
<dc:creator><rdf:Seq><rdf:li>geo-cs</rdf:li></rdf:Seq></dc:creator>
<xmp:CreatorTool>geo-cs</xmp:CreatorTool>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>""".encode()


def _accessible_catalog(pdf, doc: Document) -> None:
    """Replace matplotlib's document catalog with one that names the language, shows the title
    in the window and points at an XMP packet (title, description, language)."""
    from matplotlib.backends.backend_pdf import Name

    file = pdf._ensure_file()
    root, xmp = file.reserveObject("catalog with language"), file.reserveObject("XMP metadata")
    file.writeObject(root, {"Type": Name("Catalog"), "Pages": file.pagesObject, "Lang": doc.language,
                            "Metadata": xmp, "ViewerPreferences": {"DisplayDocTitle": True}})
    packet = _xmp(doc)
    # written by hand, uncompressed: XMP is meant to be readable without a PDF parser
    file.recordXref(xmp.id)
    file.write(b"%d 0 obj\n<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n" % (xmp.id, len(packet)))
    file.write(packet)
    file.write(b"\nendstream\nendobj\n")
    file.rootObject = root


def write_pdf(doc: Document, path: str | Path) -> Path:
    """``doc`` as an A4 PDF (see the module's notes)."""
    from matplotlib.backends.backend_pdf import PdfPages

    path = _check_path(path, ".pdf")
    titled = Document(doc.title, doc.subtitle, [Heading(doc.title), Paragraph(doc.subtitle, "note"),
                                               *doc.blocks], doc.footer, doc.language, doc.generated)
    pages = _layout(titled)
    metadata = {"Title": doc.title, "Subject": doc.subtitle, "Creator": "geo-cs", "Author": "geo-cs"}
    try:
        with plt.rc_context({"pdf.fonttype": 42}), PdfPages(path, metadata=metadata) as pdf:
            _accessible_catalog(pdf, doc)
            for number, placed in enumerate(pages, 1):
                page = _render_page(doc, placed, number, len(pages))
                try:
                    pdf.savefig(page)
                finally:
                    plt.close(page)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from exc
    return path


# -- Word ---------------------------------------------------------------------------------------

def _docx_repeat_header(row) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


def write_docx(doc: Document, path: str | Path) -> Path:
    """``doc`` as a Word document: Heading 1/2 styles, figures with captions (Caption style) and
    alternative text, tables as Word tables with a repeated header row."""
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Inches, Pt

    path = _check_path(path, ".docx")
    out = docx.Document()
    section = out.sections[0]
    section.page_width, section.page_height = Inches(A4[0]), Inches(A4[1])
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Inches(0.8))
    out.core_properties.title = doc.title
    out.core_properties.subject = doc.subtitle
    out.core_properties.language = doc.language
    out.core_properties.author = "geo-cs"
    out.styles["Normal"].font.size = Pt(10)
    out.add_heading(doc.title, level=0)
    out.add_paragraph(doc.subtitle)
    figure_no = table_no = 0
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.add_heading(block.text, level=block.level)
        elif isinstance(block, Paragraph):
            p = out.add_paragraph(block.text)
            if block.style == "lead":
                for run in p.runs:
                    run.font.size = Pt(12)
            elif block.style == "note":
                for run in p.runs:
                    run.font.size = Pt(8.5)
        elif isinstance(block, Bullets):
            for item in block.items:
                out.add_paragraph(item, style="List Bullet")
        elif isinstance(block, FigureBlock):
            figure_no += 1
            out.add_picture(io.BytesIO(figure_png(block)), width=Inches(6.5))
            picture = out.paragraphs[-1]
            picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
            doc_pr = picture._p.xpath(".//wp:docPr")[0]
            doc_pr.set("descr", block.alt)
            doc_pr.set("title", block.caption)
            doc_pr.set("name", f"Figure {figure_no}")
            out.add_paragraph(_numbered("Figure", figure_no, block.caption), style="Caption")
        elif isinstance(block, TableBlock):
            table_no += 1
            out.add_paragraph(f"Table {table_no}: {block.caption}", style="Caption")
            frame = _plain(block.frame)
            table = out.add_table(rows=len(frame) + 1, cols=len(frame.columns))
            table.style = "Table Grid"
            for c, name in enumerate(frame.columns):
                cell = table.rows[0].cells[c]
                cell.text = str(name)
                for run in cell.paragraphs[0].runs:
                    run.font.bold = True
            _docx_repeat_header(table.rows[0])
            for r, values in enumerate(frame.itertuples(index=False), 1):
                cells = table.rows[r].cells
                for c, value in enumerate(values):
                    cells[c].text = str(value)
            for row in table.rows:
                for cell in row.cells:
                    for run in cell.paragraphs[0].runs:
                        run.font.size = Pt(9)
            if block.note:
                out.add_paragraph(block.note)
    out.add_paragraph(doc.footer).runs[0].font.size = Pt(8)
    try:
        out.save(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from exc
    return path


# -- OpenDocument -------------------------------------------------------------------------------

def write_odt(doc: Document, path: str | Path) -> Path:
    """``doc`` as an OpenDocument text (LibreOffice Writer): outline headings, figures in frames
    with a title and description (alternative text) and a caption, tables as tables with a
    header row that repeats on each page."""
    from odf import draw, style, table, text
    from odf.opendocument import OpenDocumentText

    path = _check_path(path, ".odt")
    out = OpenDocumentText()
    out.meta.addElement(_odf_meta("title", doc.title))
    out.meta.addElement(_odf_meta("language", doc.language))
    out.meta.addElement(_odf_meta("description", doc.subtitle))
    heading_styles = {}
    for level, size in ((1, "16pt"), (2, "13pt")):
        s = style.Style(name=f"Heading {level}", family="paragraph", defaultoutlinelevel=str(level))
        s.addElement(style.TextProperties(fontsize=size, fontweight="bold"))
        s.addElement(style.ParagraphProperties(margintop="0.3cm", marginbottom="0.15cm"))
        out.styles.addElement(s)
        heading_styles[level] = s
    title_style = style.Style(name="Title", family="paragraph")
    title_style.addElement(style.TextProperties(fontsize="20pt", fontweight="bold"))
    caption = style.Style(name="Caption", family="paragraph")
    caption.addElement(style.TextProperties(fontsize="9pt", fontstyle="italic"))
    lead = style.Style(name="Lead", family="paragraph")
    lead.addElement(style.TextProperties(fontsize="12pt"))
    note = style.Style(name="Note", family="paragraph")
    note.addElement(style.TextProperties(fontsize="8.5pt", color="#444444"))
    cell_text = style.Style(name="Table Contents", family="paragraph")
    cell_text.addElement(style.TextProperties(fontsize="9pt"))
    heading_text = style.Style(name="Table Heading", family="paragraph")
    heading_text.addElement(style.TextProperties(fontsize="9pt", fontweight="bold"))
    for s in (title_style, caption, lead, note, cell_text, heading_text):
        out.styles.addElement(s)
    cell_style = style.Style(name="Cell", family="table-cell")
    cell_style.addElement(style.TableCellProperties(border="0.5pt solid #999999", padding="0.05cm"))
    frame_style = style.Style(name="Figure frame", family="graphic")
    frame_style.addElement(style.GraphicProperties(anchortype="as-char"))
    out.automaticstyles.addElement(cell_style)
    out.automaticstyles.addElement(frame_style)
    styles = {"lead": lead, "body": None, "note": note}

    def paragraph(content: str, s=None):
        p = text.P(stylename=s) if s is not None else text.P()
        p.addText(content)
        out.text.addElement(p)
        return p

    paragraph(doc.title, title_style)
    paragraph(doc.subtitle)
    figure_no = table_no = 0
    for block in doc.blocks:
        if isinstance(block, Heading):
            h = text.H(outlinelevel=block.level, stylename=heading_styles[min(block.level, 2)])
            h.addText(block.text)
            out.text.addElement(h)
        elif isinstance(block, Paragraph):
            paragraph(block.text, styles[block.style])
        elif isinstance(block, Bullets):
            items = text.List()
            for entry in block.items:
                li = text.ListItem()
                p = text.P()
                p.addText(entry)
                li.addElement(p)
                items.addElement(li)
            out.text.addElement(items)
        elif isinstance(block, FigureBlock):
            figure_no += 1
            png = figure_png(block)
            from PIL import Image

            with Image.open(io.BytesIO(png)) as image:
                ratio = image.height / image.width
            href = out.addPicture(f"Pictures/figure{figure_no}.png", "image/png", png)
            width = 16.0
            holder = text.P()
            frame = draw.Frame(name=f"Figure {figure_no}", stylename=frame_style, anchortype="as-char",
                               width=f"{width}cm", height=f"{width * ratio:.2f}cm")
            frame.addElement(draw.Image(href=href))
            title = _svg("title", block.caption)
            desc = _svg("desc", block.alt)
            frame.addElement(title)
            frame.addElement(desc)
            holder.addElement(frame)
            out.text.addElement(holder)
            paragraph(_numbered("Figure", figure_no, block.caption), caption)
        elif isinstance(block, TableBlock):
            table_no += 1
            paragraph(f"Table {table_no}: {block.caption}", caption)
            frame = _plain(block.frame)
            t = table.Table(name=f"Table {table_no}")
            t.addElement(table.TableColumn(numbercolumnsrepeated=len(frame.columns)))
            head = table.TableHeaderRows()
            row = table.TableRow()
            for name in frame.columns:
                row.addElement(_odf_cell(str(name), cell_style, heading_text))
            head.addElement(row)
            t.addElement(head)
            for values in frame.itertuples(index=False):
                row = table.TableRow()
                for value in values:
                    row.addElement(_odf_cell(str(value), cell_style, cell_text))
                t.addElement(row)
            out.text.addElement(t)
            if block.note:
                paragraph(block.note, note)
    paragraph(doc.footer, note)
    try:
        out.save(str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from exc
    return path


def _numbered(kind: str, number: int, caption: str) -> str:
    """"Figure 2: …", unless the caption numbers itself (the report's "Figure 4.7: …")."""
    return caption if caption.startswith(kind) else f"{kind} {number}: {caption}"


def _odf_meta(what: str, value: str):
    from odf import dc

    element = {"title": dc.Title, "language": dc.Language, "description": dc.Description}[what]()
    element.addText(value)
    return element


def _svg(what: str, value: str):
    from odf import svg

    element = svg.Title() if what == "title" else svg.Desc()
    element.addText(value)
    return element


def _odf_cell(value: str, cell_style, paragraph_style):
    from odf import table, text

    cell = table.TableCell(stylename=cell_style, valuetype="string")
    p = text.P(stylename=paragraph_style)
    p.addText(value)
    cell.addElement(p)
    return cell


# -- HTML ---------------------------------------------------------------------------------------

def write_html(doc: Document, path: str | Path) -> Path:
    """``doc`` as one self-contained HTML page: figures inline as SVG (``role="img"`` with the
    description as ``aria-label``), tables as tables, no script and nothing fetched."""
    from geo_cs.export.charts import figure_svg

    path = _check_path(path, ".html")
    esc = html_lib.escape
    parts = [f"""<!DOCTYPE html>
<html lang="{esc(doc.language)}"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{esc(doc.title)}</title>
<style>
body {{ font-family: system-ui, Arial, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
caption, figcaption {{ text-align: left; font-weight: bold; margin: 0.4em 0; }}
figure {{ margin: 1.5em 0; }} figure svg {{ max-width: 100%; height: auto; }}
.lead {{ font-size: 1.15em; }} .note, .attribution {{ font-size: 12px; color: #555; }}
</style></head><body>
<h1>{esc(doc.title)}</h1>
<p>{esc(doc.subtitle)}</p>"""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            level = block.level + 1
            parts.append(f"<h{level}>{esc(block.text)}</h{level}>")
        elif isinstance(block, Paragraph):
            parts.append(f'<p class="{block.style}">{esc(block.text)}</p>')
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, FigureBlock):
            svg = figure_svg(block.draw(None))
            svg = svg[svg.index("<svg"):]
            parts.append(f'<figure role="img" aria-label="{esc(block.alt)}">{svg}'
                         f"<figcaption>{esc(block.caption)}</figcaption></figure>")
        elif isinstance(block, TableBlock):
            table = _plain(block.frame).to_html(index=False, border=0)
            table = table.replace(">\n  <thead>", f"><caption>{esc(block.caption)}</caption>\n  <thead>", 1)
            parts.append(table)
            if block.note:
                parts.append(f'<p class="note">{esc(block.note)}</p>')
    parts.append(f'<p class="attribution">{esc(doc.footer)}</p></body></html>\n')
    try:
        path.write_text("\n".join(parts), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror})") from exc
    return path
