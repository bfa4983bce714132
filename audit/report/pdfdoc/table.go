package pdfdoc

import (
	"strings"
)

// Column describes one table column.
type Column struct {
	Title string
	// Width in millimetres; columns with 0 share what the others leave.
	Width float64
	Align string // "L" (default), "R", "C"
	Mono  bool   // monospaced (ARNs, ids, hashes)
	Bold  bool
	// Color, if set, may give a cell's text a colour (status words).
	Color func(value string) (r, g, b int, ok bool)
}

// TableOpts tune a table.
type TableOpts struct {
	NoHeader bool
	FontSize float64 // default 7.5
}

const (
	padX = 1.2
	padY = 0.9
)

// Table draws rows under a header that is repeated on every page the table
// spans. Cells wrap; a row taller than the room left continues on the next
// page with the header repeated, so nothing is ever cut.
func (d *Doc) Table(cols []Column, rows [][]string, o TableOpts) {
	p := d.pdf
	size := o.FontSize
	if size == 0 {
		size = 7.5
	}
	lh := size * 0.42
	widths := layout(cols)
	header := func() {
		if o.NoHeader {
			return
		}
		lines := make([][]string, len(cols))
		sizes := make([]float64, len(cols))
		n := 1
		for i, c := range cols {
			d.font(Sans, "B", size)
			title := d.clean(c.Title, Sans)
			sizes[i] = d.fitSize(title, widths[i]-2*padX)
			d.font(Sans, "B", sizes[i])
			lines[i] = d.wrap(title, widths[i]-2*padX)
			n = max(n, len(lines[i]))
		}
		h := float64(n)*lh + 2*padY
		y := p.GetY()
		p.SetFillColor(225, 229, 236)
		p.Rect(marginL, y, ContentWidth, h, "F")
		x := marginL
		for i, c := range cols {
			d.font(Sans, "B", sizes[i])
			for j, l := range lines[i] {
				p.SetXY(x+padX, y+padY+float64(j)*lh)
				p.CellFormat(widths[i]-2*padX, lh, l, "", 0, align(c.Align), false, 0, "")
			}
			x += widths[i]
		}
		p.SetY(y + h)
		p.SetDrawColor(150, 150, 150)
		p.Line(marginL, y+h, marginL+ContentWidth, y+h)
	}
	// A header with no room for one row under it moves to the next page.
	if p.GetY()+4*lh+4*padY > bottom {
		p.AddPage()
	}
	header()
	fresh := false // true while nothing but the header is on the page
	sizes := make([]float64, len(cols))
	for ri, row := range rows {
		lines := make([][]string, len(cols))
		n := 1
		for i, c := range cols {
			v := ""
			if i < len(row) {
				v = row[i]
			}
			fam := Sans
			if c.Mono {
				fam = Mono
			}
			v = d.clean(v, fam)
			sizes[i] = d.setCellFont(c, size)
			if fit := d.fitSize(v, widths[i]-2*padX); fit != d.cur.size {
				d.font(d.cur.family, d.cur.style, fit)
			}
			sizes[i] = d.cur.size
			lines[i] = d.wrap(v, widths[i]-2*padX)
			n = max(n, len(lines[i]))
		}
		for start := 0; start < n; {
			avail := int((bottom - p.GetY() - 2*padY) / lh)
			// A row moves whole to the next page when it would fit on one;
			// only a row taller than a page is split (and continues under
			// a repeated header).
			if avail < 1 || (avail < n-start && !fresh) {
				p.AddPage()
				header()
				fresh = true
				continue
			}
			fresh = false
			end := min(n, start+avail)
			h := float64(end-start)*lh + 2*padY
			y := p.GetY()
			if ri%2 == 1 {
				p.SetFillColor(246, 247, 250)
				p.Rect(marginL, y, ContentWidth, h, "F")
			}
			x := marginL
			for i, c := range cols {
				d.setCellFont(c, size)
				d.font(d.cur.family, d.cur.style, sizes[i])
				colored := false
				if c.Color != nil && i < len(row) {
					if r, g, b, ok := c.Color(row[i]); ok {
						p.SetTextColor(r, g, b)
						colored = true
					}
				}
				for j := start; j < end && j < len(lines[i]); j++ {
					p.SetXY(x+padX, y+padY+float64(j-start)*lh)
					p.CellFormat(widths[i]-2*padX, lh, lines[i][j], "", 0, align(c.Align), false, 0, "")
				}
				if colored {
					p.SetTextColor(0, 0, 0)
				}
				x += widths[i]
			}
			p.SetY(y + h)
			p.SetDrawColor(215, 215, 215)
			p.Line(marginL, y+h, marginL+ContentWidth, y+h)
			start = end
		}
	}
	p.Ln(2)
}

// setCellFont selects a column's font at the table's size and returns
// the size it set (monospaced text is set a little smaller).
func (d *Doc) setCellFont(c Column, size float64) float64 {
	switch {
	case c.Mono:
		d.font(Mono, "", size*0.92)
	case c.Bold:
		d.font(Sans, "B", size)
	default:
		d.font(Sans, "", size)
	}
	return d.cur.size
}

// minFontScale bounds how far fitSize shrinks a cell's text.
const minFontScale = 0.45

// fitSize is the size, in the current font, at which every piece of s
// that cannot be broken fits in w: a word, or a segment of an ARN or
// path ending in ':' or '/'. A long word (GenerateDataKeyWithoutPlaintext,
// PendingDeletion, a SHA-256, an event id) is set smaller rather than
// broken in the middle, which would also break it for a reader searching
// the PDF's text; at most down to minFontScale, past which breakWord
// cuts it as a last resort.
func (d *Doc) fitSize(s string, w float64) float64 {
	size := d.cur.size
	if d.width(s) <= w {
		return size
	}
	t := d.widthTab()
	widest, cur := 0.0, 0.0
	for _, r := range s {
		switch r {
		case ' ', '\n':
			cur = 0
			continue
		}
		cur += d.glyph(t, r)
		widest = max(widest, cur)
		if strings.ContainsRune(breakAfterBest, r) {
			cur = 0
		}
	}
	if widest*size <= w {
		return size
	}
	// A little short of the full width: text flush against the next
	// column runs into it for pdftotext, which then reads the two as one.
	return max(0.94*w/widest, size*minFontScale)
}

func align(a string) string {
	switch a {
	case "R", "C":
		return a
	}
	return "L"
}

func layout(cols []Column) []float64 {
	used, free := 0.0, 0
	for _, c := range cols {
		if c.Width > 0 {
			used += c.Width
		} else {
			free++
		}
	}
	w := make([]float64, len(cols))
	share := 0.0
	if free > 0 {
		share = (ContentWidth - used) / float64(free)
	}
	for i, c := range cols {
		w[i] = c.Width
		if c.Width <= 0 {
			w[i] = share
		}
	}
	return w
}

// A long token (an ARN, a path, an event id) is broken after ':' or '/'
// when it can be, so an ARN reads as whole segments, else after another
// separator, or before a '-' (a line ending in '-' would be joined without
// it by pdftotext's de-hyphenation), else between characters.
const (
	breakAfterBest = ":/"
	breakAfter     = "_.,@=+|"
	breakBefore    = "-"
)

func (d *Doc) breakWord(word string, w float64) []string {
	var out []string
	r := []rune(word)
	t := d.widthTab()
	for len(r) > 0 {
		width, cut, best, other := 0.0, len(r), -1, -1
		for i, c := range r {
			width += d.glyph(t, c) * d.cur.size
			if width > w && i > 0 {
				cut = i
				break
			}
			switch {
			case strings.ContainsRune(breakAfterBest, c):
				best = i + 1
			case strings.ContainsRune(breakAfter, c):
				other = i + 1
			case strings.ContainsRune(breakBefore, c) && i > 0:
				other = i
			}
		}
		if cut < len(r) {
			switch {
			case best > 0 && best < cut:
				cut = best
			case other > 0 && other < cut:
				cut = other
			}
		}
		out = append(out, string(r[:cut]))
		r = r[cut:]
	}
	return out
}

// wrap splits s into lines no wider than w in the current font. Words
// longer than a line are broken (see breakWord); no character is dropped.
func (d *Doc) wrap(s string, w float64) []string {
	var out []string
	space := d.width(" ")
	for _, para := range strings.Split(s, "\n") {
		if d.width(para) <= w {
			out = append(out, para)
			continue
		}
		line, lw := "", 0.0
		for _, word := range strings.Split(para, " ") {
			ww := d.width(word)
			if line != "" && lw+space+ww <= w {
				line, lw = line+" "+word, lw+space+ww
				continue
			}
			if line == "" && ww <= w {
				line, lw = word, ww
				continue
			}
			if line != "" {
				out = append(out, line)
				line, lw = "", 0
			}
			if ww <= w {
				line, lw = word, ww
				continue
			}
			pieces := d.breakWord(word, w)
			out = append(out, pieces[:len(pieces)-1]...)
			line = pieces[len(pieces)-1]
			lw = d.width(line)
		}
		out = append(out, line)
	}
	return out
}

// MonoWidth is the column width that fits chars characters of the
// monospaced font on one line at a table font size: event ids (36
// characters) stay whole, so a reader can search for them.
func MonoWidth(chars int, tableFontSize float64) float64 {
	const advance = 1229.0 / 2048 // Go Mono's advance width, in em
	return float64(chars)*advance*tableFontSize*0.92*25.4/72 + 2*padX + 0.6
}
