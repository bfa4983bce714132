package paper

import (
	"fmt"
	"io"
	"time"
	"unsafe"

	"rsc.io/qr"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
)

// Card is what a share card says besides the share itself.
type Card struct {
	CeremonyTitle string
	CeremonyID    string
	SetLabel      string // the quorum set prefix the share carries
	Custodian     string
	Index         int
	Threshold     int
	Custodians    int
	Issued        time.Time
	Rehearsal     bool
}

// ShareCard renders the one-page share card of one custodian: who it belongs
// to, which ceremony and quorum, the share as lines of grouped base32
// (with its checksum inside), and a QR code of the same text.
//
// The PDF contains the share in clear: write it only to the custodian's own
// medium or straight to a printer, never to the ceremony output directory.
func ShareCard(w io.Writer, c Card, share *quorum.Share) error {
	footer := fmt.Sprintf("Share card %d of %d - %s - quorum %s", c.Index, c.Custodians, c.CeremonyID, c.SetLabel)
	pdf := newDoc(footer, c.Rehearsal, c.Issued)
	pdf.AddPage()

	pdf.SetFont(sans, "B", 18)
	pdf.CellFormat(0, 10, "Quorum share card - CONFIDENTIAL", "", 1, "L", false, 0, "")
	pdf.SetFont(sans, "", 9.5)
	pdf.MultiCell(0, 5, fmt.Sprintf("Any %d of the %d custodians of this ceremony together can unlock its token and keys. "+
		"This card is one of them: keep it sealed, do not copy or photograph it, and bring it when a ceremony needs the quorum.",
		c.Threshold, c.Custodians), "", "L", false)

	heading(pdf, "Custodian and ceremony")
	field(pdf, "Custodian", c.Custodian, false)
	field(pdf, "Share", fmt.Sprintf("%d of %d (any %d of %d unlock)", c.Index, c.Custodians, c.Threshold, c.Custodians), false)
	field(pdf, "Ceremony", c.CeremonyTitle, false)
	field(pdf, "Ceremony ID", c.CeremonyID, true)
	field(pdf, "Quorum set", c.SetLabel, true)
	field(pdf, "Issued (UTC)", c.Issued.UTC().Format("2006-01-02 15:04:05"), false)

	heading(pdf, "Share")
	pdf.SetFont(sans, "", 9)
	pdf.MultiCell(0, 5, "Type it exactly as printed (spaces and case do not matter). The last groups are a checksum: "+
		"a typing mistake is reported before anything else happens.", "", "L", false)
	pdf.Ln(2)
	pdf.SetFont(mono, "", 15)
	lines := share.Lines()
	for i, l := range lines {
		pdf.CellFormat(0, 9, fmt.Sprintf("%d  %s", i+1, l), "", 1, "L", false, 0, "")
		clear(l)
	}

	pdf.Ln(3)
	top := pdf.GetY()
	if err := drawQR(pdf, share, 18, top, 62); err != nil {
		return err
	}
	pdf.SetXY(86, top)
	pdf.SetFont(sans, "", 9)
	pdf.MultiCell(0, 5, "The QR code holds the same share text, for entry with a scanner on the air-gapped laptop only. "+
		"Never scan it with a phone or a networked device.\n\n"+
		"If this card is lost or may have been seen by someone else, tell the ceremony administrator: "+
		"the quorum can be re-issued in a new ceremony, which makes this card worthless.", "", "L", false)
	pdf.SetY(top + 68)

	heading(pdf, "Receipt")
	pdf.SetFont(sans, "", 9.5)
	pdf.MultiCell(0, 6, fmt.Sprintf("I, %s, received share %d of this ceremony and checked that it is legible.", c.Custodian, c.Index), "", "L", false)
	pdf.Ln(10)
	y := pdf.GetY()
	pdf.Line(18, y, 100, y)
	pdf.Line(120, y, 190, y)
	pdf.SetFont(sans, "", 8)
	pdf.SetXY(18, y+1)
	pdf.CellFormat(82, 4, "Signature", "", 0, "L", false, 0, "")
	pdf.SetXY(120, y+1)
	pdf.CellFormat(70, 4, "Date", "", 1, "L", false, 0, "")
	return output(pdf, w)
}

// drawQR draws the share's QR code (error correction M) as vector squares with
// the standard four-module quiet zone, size mm wide, at x, y.
func drawQR(pdf interface {
	Rect(x, y, w, h float64, style string)
	SetFillColor(r, g, b int)
}, share *quorum.Share, x, y, size float64) error {
	compact := share.Compact()
	defer clear(compact)
	// The QR encoder takes a string; share the slice's memory rather than copy it.
	code, err := qr.Encode(unsafe.String(&compact[0], len(compact)), qr.M)
	if err != nil {
		return fmt.Errorf("share card QR code: %w", err)
	}
	const quiet = 4
	mod := size / float64(code.Size+2*quiet)
	pdf.SetFillColor(0, 0, 0)
	for row := range code.Size {
		for col := range code.Size {
			if code.Black(col, row) {
				pdf.Rect(x+float64(col+quiet)*mod, y+float64(row+quiet)*mod, mod, mod, "F")
			}
		}
	}
	return nil
}
