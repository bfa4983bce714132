// Package pdfdoc is the small document layer the audit reports draw with:
// embedded UTF-8 fonts, running headers and "page N of M" footers, headings
// with PDF bookmarks, key/value blocks, tables that wrap long cells (ARNs
// break after ':' or '/', never cut) and repeat their header on every page,
// and bar charts with axes and labels. It knows nothing of KMS; the report
// packages decide what to say, this package only how it looks.
//
// Output is deterministic for a given content and generation time (fixed
// creation dates, sorted catalog), so two renderings of one model are the
// same bytes.
package pdfdoc

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font/sfnt"

	"github.com/keyceremony/keyceremony/assets/fonts"
)

// Geometry in millimetres (A4 portrait).
const (
	pageW   = 210.0
	pageH   = 297.0
	marginL = 14.0
	marginR = 14.0
	marginT = 18.0
	marginB = 16.0
	// ContentWidth is the usable width of a page.
	ContentWidth = pageW - marginL - marginR
	bottom       = pageH - marginB
)

// Font families registered in every document.
const (
	Sans = "go"
	Mono = "gomono"
)

// Doc is one report being written.
type Doc struct {
	pdf    *gofpdf.Fpdf
	header string // running header (left)
	scope  string // running header (right)
	footer string // footer (left), e.g. the input digest
	cover  bool   // the current page is the cover: no running header
	cov    map[string]*coverage
	cur    fontKey              // the font set through font()
	widths map[string]*widthTab // family+style -> glyph widths at 1 pt
}

type fontKey struct {
	family, style string
	size          float64
}

type widthTab struct {
	ascii [128]float64
	known [128]bool
	other map[rune]float64
}

// font selects a font, skipping gofpdf's work when it is already current.
// Page headers and footers set fonts behind its back, but gofpdf's
// AddPage restores the font in use before the page break, so cur stays true.
func (d *Doc) font(family, style string, size float64) {
	k := fontKey{family, style, size}
	if k == d.cur {
		return
	}
	d.pdf.SetFont(family, style, size)
	d.cur = k
}

// width measures s in the current font. Glyph widths add up (gofpdf
// applies no kerning), so they are cached per rune.
func (d *Doc) width(s string) float64 {
	t := d.widthTab()
	w := 0.0
	for _, r := range s {
		w += d.glyph(t, r)
	}
	return w * d.cur.size
}

func (d *Doc) widthTab() *widthTab {
	key := d.cur.family + d.cur.style
	t := d.widths[key]
	if t == nil {
		t = &widthTab{other: map[rune]float64{}}
		d.widths[key] = t
	}
	return t
}

// glyph is the width of r at 1 pt.
func (d *Doc) glyph(t *widthTab, r rune) float64 {
	if r < 128 {
		if !t.known[r] {
			t.ascii[r] = d.pdf.GetStringWidth(string(r)) / d.cur.size
			t.known[r] = true
		}
		return t.ascii[r]
	}
	v, ok := t.other[r]
	if !ok {
		v = d.pdf.GetStringWidth(string(r)) / d.cur.size
		t.other[r] = v
	}
	return v
}

// Info describes the document.
type Info struct {
	Title     string // document title (metadata and header)
	Scope     string // short scope line for the running header
	Footer    string // left part of the footer
	Generated time.Time
	Author    string
}

// New starts a document.
func New(info Info) (*Doc, error) {
	pdf := gofpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(marginL, marginT, marginR)
	// Pages are broken by this package (need, Table), never by gofpdf, so
	// a table can repeat its header and a chart is never split.
	pdf.SetAutoPageBreak(false, marginB)
	pdf.AddUTF8FontFromBytes(Sans, "", fonts.Regular)
	pdf.AddUTF8FontFromBytes(Sans, "B", fonts.Bold)
	pdf.AddUTF8FontFromBytes(Mono, "", fonts.Mono)
	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("load the embedded report fonts: %w", err)
	}
	d := &Doc{pdf: pdf, header: info.Title, scope: info.Scope, footer: info.Footer, cov: map[string]*coverage{}, widths: map[string]*widthTab{}}
	for fam, ttf := range map[string][]byte{Sans: fonts.Regular, Mono: fonts.Mono} {
		f, err := sfnt.Parse(ttf)
		if err != nil {
			return nil, fmt.Errorf("parse the embedded font %s: %w", fam, err)
		}
		d.cov[fam] = &coverage{font: f, known: map[rune]bool{}}
	}
	pdf.SetTitle(info.Title, true)
	pdf.SetAuthor(info.Author, true)
	pdf.SetCreator("keyceremony", true)
	pdf.SetProducer("keyceremony (gofpdf)", true)
	if !info.Generated.IsZero() {
		pdf.SetCreationDate(info.Generated)
		pdf.SetModificationDate(info.Generated)
	}
	pdf.SetCatalogSort(true)
	pdf.AliasNbPages("{nb}")
	pdf.SetHeaderFuncMode(d.drawHeader, true)
	pdf.SetFooterFunc(d.drawFooter)
	return d, nil
}

// coverage remembers which runes a font can draw. The Go fonts cover Latin,
// Greek and Cyrillic; anything else would print as an empty box that
// pdftotext cannot read back, so it is written as [U+XXXX] instead (the
// CSV and JSON keep the original text).
type coverage struct {
	font  *sfnt.Font
	buf   sfnt.Buffer
	known map[rune]bool
}

func (c *coverage) has(r rune) bool {
	if v, ok := c.known[r]; ok {
		return v
	}
	// gofpdf indexes a 65536-entry width table: keep to the BMP.
	ok := r < 0x10000
	if ok {
		g, err := c.font.GlyphIndex(&c.buf, r)
		ok = err == nil && g != 0
	}
	c.known[r] = ok
	return ok
}

// clean makes s printable in family: control characters become spaces,
// runes the font lacks become [U+XXXX].
func (d *Doc) clean(s, family string) string {
	c := d.cov[family]
	ok := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || !c.has(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteRune(r)
		case unicode.IsControl(r):
			b.WriteByte(' ')
		case !c.has(r):
			fmt.Fprintf(&b, "[U+%04X]", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (d *Doc) drawHeader() {
	if d.cover {
		return
	}
	p := d.pdf
	p.SetFont(Sans, "B", 8)
	p.SetTextColor(60, 60, 60)
	p.SetXY(marginL, 8)
	p.CellFormat(ContentWidth/2, 5, d.clean(d.header, Sans), "", 0, "L", false, 0, "")
	p.SetFont(Sans, "", 7.5)
	p.SetXY(marginL+ContentWidth/2, 8)
	p.CellFormat(ContentWidth/2, 5, d.fit(d.clean(d.scope, Sans), ContentWidth/2), "", 0, "R", false, 0, "")
	p.SetDrawColor(180, 180, 180)
	p.Line(marginL, 13.5, pageW-marginR, 13.5)
	p.SetTextColor(0, 0, 0)
	p.SetXY(marginL, marginT)
}

func (d *Doc) drawFooter() {
	p := d.pdf
	p.SetFont(Sans, "", 7)
	p.SetTextColor(90, 90, 90)
	p.SetXY(marginL, pageH-11)
	p.CellFormat(ContentWidth*0.75, 4, d.fit(d.clean(d.footer, Sans), ContentWidth*0.75), "", 0, "L", false, 0, "")
	p.SetXY(marginL+ContentWidth*0.75, pageH-11)
	p.CellFormat(ContentWidth*0.25, 4, fmt.Sprintf("Page %d of {nb}", p.PageNo()), "", 0, "R", false, 0, "")
	p.SetTextColor(0, 0, 0)
}

// fit shortens s with an ellipsis to width w in the current font; used only
// for the running header and footer, whose full text is on the cover.
func (d *Doc) fit(s string, w float64) string {
	if d.pdf.GetStringWidth(s) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 1 && d.pdf.GetStringWidth(string(r)+"…") > w { // header and footer only: not cached
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// Cover starts the cover page (no running header).
func (d *Doc) Cover(title, subtitle string) {
	d.cover = true
	d.pdf.AddPage()
	d.cover = false
	p := d.pdf
	p.SetY(40)
	d.font(Sans, "B", 22)
	p.MultiCell(ContentWidth, 10, d.clean(title, Sans), "", "L", false)
	if subtitle != "" {
		p.Ln(2)
		d.font(Sans, "", 12)
		p.SetTextColor(70, 70, 70)
		p.MultiCell(ContentWidth, 6, d.clean(subtitle, Sans), "", "L", false)
		p.SetTextColor(0, 0, 0)
	}
	p.Ln(8)
	p.Bookmark("Cover", 0, -1)
}

// NewPage starts a page.
func (d *Doc) NewPage() { d.pdf.AddPage() }

// need starts a new page unless h millimetres remain.
func (d *Doc) need(h float64) {
	if d.pdf.GetY()+h > bottom {
		d.pdf.AddPage()
	}
}

// Heading writes a section title (level 0 or 1) and bookmarks it.
func (d *Doc) Heading(level int, text string) {
	p := d.pdf
	size, gap := 14.0, 4.0
	if level > 0 {
		size, gap = 11, 2.5
	}
	d.need(size*0.6 + 14)
	if p.GetY() > marginT+1 {
		p.Ln(gap)
	}
	p.Bookmark(d.clean(text, Sans), level, -1)
	d.font(Sans, "B", size)
	// wrap, not MultiCell: a heading that is an ARN breaks after ':' or
	// '/', never inside the key id.
	text = d.clean(text, Sans)
	d.font(Sans, "B", d.fitSize(text, ContentWidth))
	for _, line := range d.wrap(text, ContentWidth) {
		p.SetX(marginL)
		p.CellFormat(ContentWidth, size*0.5, line, "", 1, "L", false, 0, "")
	}
	p.Ln(1.5)
}

// Para writes a paragraph of body text.
func (d *Doc) Para(text string) { d.para(text, 9, "", 0) }

// Note writes a smaller grey paragraph (caveats, method notes).
func (d *Doc) Note(text string) { d.para(text, 8, "", 90) }

// Warn writes a bold paragraph in dark red: a caveat the reader must not miss.
func (d *Doc) Warn(text string) { d.para(text, 8.5, "B", -1) }

func (d *Doc) para(text string, size float64, style string, grey int) {
	p := d.pdf
	d.font(Sans, style, size)
	switch {
	case grey < 0:
		p.SetTextColor(150, 20, 20)
	case grey > 0:
		p.SetTextColor(grey, grey, grey)
	}
	lh := size * 0.45
	for _, line := range d.wrap(d.clean(text, Sans), ContentWidth) {
		d.need(lh)
		p.SetX(marginL)
		p.CellFormat(ContentWidth, lh, line, "", 1, "L", false, 0, "")
	}
	p.SetTextColor(0, 0, 0)
	p.Ln(1.2)
}

// KV writes label/value pairs in two columns; values wrap.
func (d *Doc) KV(pairs [][2]string) {
	d.Table([]Column{{Title: "", Width: 62, Bold: true}, {Title: ""}}, toRows(pairs), TableOpts{NoHeader: true})
}

func toRows(pairs [][2]string) [][]string {
	rows := make([][]string, len(pairs))
	for i, p := range pairs {
		rows[i] = []string{p[0], p[1]}
	}
	return rows
}

// Output finishes the document and writes it.
func (d *Doc) Output(w io.Writer) error {
	if err := d.pdf.Error(); err != nil {
		return fmt.Errorf("render PDF: %w", err)
	}
	if err := d.pdf.Output(w); err != nil {
		return fmt.Errorf("write PDF: %w", err)
	}
	return nil
}

// Err is the first drawing error, if any.
func (d *Doc) Err() error { return d.pdf.Error() }

// PageCount is the number of pages so far.
func (d *Doc) PageCount() int { return d.pdf.PageCount() }
