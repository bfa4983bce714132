// Package paper renders the ceremony's printed evidence: the transcript PDF
// that every participant signs by hand, and the one-page share card each
// custodian takes away. Both embed the Go fonts, so names in any script print
// as written and the text reads back with pdftotext.
package paper

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jung-kurt/gofpdf"

	"github.com/keyceremony/keyceremony/assets/fonts"
)

const (
	sans = "go"
	mono = "gomono"
)

// newDoc starts an A4 portrait document with the fonts registered and a
// footer carrying the document's identity and page numbers, so a loose page
// can be put back where it belongs.
func newDoc(footer string, rehearsal bool, created time.Time) *gofpdf.Fpdf {
	pdf := gofpdf.New("P", "mm", "A4", "")
	pdf.AddUTF8FontFromBytes(sans, "", fonts.Regular)
	pdf.AddUTF8FontFromBytes(sans, "B", fonts.Bold)
	pdf.AddUTF8FontFromBytes(mono, "", fonts.Mono)
	pdf.SetCreationDate(created)
	pdf.SetModificationDate(created)
	pdf.SetProducer("Key Ceremony", true)
	pdf.SetMargins(18, 16, 18)
	pdf.SetAutoPageBreak(true, 18)
	pdf.AliasNbPages("{nb}")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-13)
		pdf.SetFont(sans, "", 7.5)
		pdf.SetTextColor(90, 90, 90)
		pdf.CellFormat(0, 4, fmt.Sprintf("%s    page %d of {nb}", footer, pdf.PageNo()), "", 0, "C", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	if rehearsal {
		pdf.SetHeaderFunc(func() { watermark(pdf) })
	}
	return pdf
}

// watermark stamps REHEARSAL across the page and on its top edge.
func watermark(pdf *gofpdf.Fpdf) {
	w, h := pdf.GetPageSize()
	pdf.SetFont(sans, "B", 80)
	pdf.SetTextColor(230, 60, 60)
	pdf.SetAlpha(0.18, "Normal")
	pdf.TransformBegin()
	pdf.TransformRotate(55, w/2, h/2)
	tw := pdf.GetStringWidth("REHEARSAL")
	pdf.Text(w/2-tw/2, h/2, "REHEARSAL")
	pdf.TransformEnd()
	pdf.SetAlpha(1, "Normal")
	pdf.SetFont(sans, "B", 9)
	pdf.SetXY(0, 6)
	pdf.CellFormat(w, 5, "REHEARSAL - throwaway SoftHSM token - not valid for production", "", 0, "C", false, 0, "")
	pdf.SetTextColor(0, 0, 0)
	pdf.SetXY(18, 16)
}

func heading(pdf *gofpdf.Fpdf, text string) {
	pdf.Ln(3)
	pdf.SetFont(sans, "B", 12)
	pdf.CellFormat(0, 7, text, "B", 1, "L", false, 0, "")
	pdf.Ln(1.5)
}

// field prints "label: value" with the value wrapped in the remaining width.
func field(pdf *gofpdf.Fpdf, label, value string, monoValue bool) {
	const lw = 42
	pdf.SetFont(sans, "B", 9)
	x := pdf.GetX()
	y := pdf.GetY()
	pdf.CellFormat(lw, 5, label, "", 0, "L", false, 0, "")
	if monoValue {
		pdf.SetFont(mono, "", 8.5)
	} else {
		pdf.SetFont(sans, "", 9)
	}
	pdf.SetXY(x+lw, y)
	pdf.MultiCell(0, 5, value, "", "L", false)
}

// hexGroups prints a hash as groups of four hex digits, which people compare more reliably.
func hexGroups(b []byte) string {
	h := fmt.Sprintf("%x", b)
	var parts []string
	for i := 0; i < len(h); i += 4 {
		parts = append(parts, h[i:min(i+4, len(h))])
	}
	return strings.Join(parts, " ")
}

func output(pdf *gofpdf.Fpdf, w io.Writer) error {
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("render PDF: %w", err)
	}
	if err := pdf.Output(w); err != nil {
		return fmt.Errorf("write PDF: %w", err)
	}
	return nil
}
