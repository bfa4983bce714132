package paper

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jung-kurt/gofpdf"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// Person is a participant as printed on the signature page.
type Person struct {
	Name string
	Role string // the role's title, e.g. "Internal Witness"
}

// Fingerprint is a key or certificate fingerprint to be read aloud.
type Fingerprint struct {
	Label  string
	SHA256 []byte
}

// Transcript is what the transcript PDF shows.
type Transcript struct {
	Title        string
	Kind         string
	CeremonyID   string
	ScriptPath   string
	ScriptSHA256 []byte
	Rehearsal    bool
	Participants []Person
	Entries      []transcript.Entry
	Fingerprints []Fingerprint
	Created      time.Time
}

// TranscriptPDF renders the transcript for printing and signing: the script
// hash, the participants, every entry with its result, confirmations, details
// and files, the fingerprints and the final hash (hex and PGP words), and a
// signature line for each participant.
func TranscriptPDF(w io.Writer, t Transcript) error {
	if len(t.Entries) == 0 {
		return fmt.Errorf("transcript PDF: no entries")
	}
	final := t.Entries[len(t.Entries)-1]
	finalHash, _ := hex.DecodeString(final.Hash)
	footer := fmt.Sprintf("Ceremony transcript %s - final hash %s...", t.CeremonyID, final.Hash[:16])
	pdf := newDoc(footer, t.Rehearsal, t.Created)
	pdf.AddPage()

	pdf.SetFont(sans, "B", 17)
	title := "Ceremony transcript"
	if t.Rehearsal {
		title += " - REHEARSAL"
	}
	pdf.CellFormat(0, 9, title, "", 1, "L", false, 0, "")
	pdf.SetFont(sans, "B", 12)
	pdf.MultiCell(0, 6, t.Title, "", "L", false)
	pdf.Ln(2)
	field(pdf, "Ceremony", fmt.Sprintf("%s (%s)", t.CeremonyID, t.Kind), false)
	field(pdf, "Script", t.ScriptPath, false)
	field(pdf, "Script SHA-256", hexGroups(t.ScriptSHA256), true)
	field(pdf, "Script words", words.String(t.ScriptSHA256), false)
	// The first entry names the binary that ran the ceremony; printed in the
	// header so the signatories see which release they vouch for.
	if exe := t.Entries[0].Detail("binary sha256"); exe != "" {
		sum, _ := hex.DecodeString(exe)
		field(pdf, "Key Ceremony", fmt.Sprintf("%s (commit %s)", t.Entries[0].Detail("binary version"), t.Entries[0].Detail("binary commit")), false)
		field(pdf, "Binary SHA-256", hexGroups(sum), true)
		field(pdf, "Binary words", words.String(sum), false)
	}
	field(pdf, "Started (UTC)", t.Entries[0].Time.UTC().Format("2006-01-02 15:04:05"), false)
	field(pdf, "Last entry (UTC)", final.Time.UTC().Format("2006-01-02 15:04:05"), false)

	heading(pdf, "Participants")
	for _, p := range t.Participants {
		field(pdf, p.Role, p.Name, false)
	}

	heading(pdf, "Steps")
	for _, e := range t.Entries {
		entry(pdf, e)
	}

	if len(t.Fingerprints) > 0 {
		heading(pdf, "Fingerprints (SHA-256)")
		for _, f := range t.Fingerprints {
			field(pdf, f.Label, hexGroups(f.SHA256), true)
			field(pdf, "", words.String(f.SHA256), false)
			pdf.Ln(1)
		}
	}

	heading(pdf, fmt.Sprintf("Final hash (entry %d)", final.Seq))
	field(pdf, "SHA-256", hexGroups(finalHash), true)
	field(pdf, "Words", words.String(finalHash), false)
	pdf.SetFont(sans, "", 8.5)
	pdf.MultiCell(0, 4.5, "The final hash stands for every entry before it. Read the words aloud, compare them with the screen, and write them "+
		"by hand on this page before signing. Later, anyone holding the transcript file checks it against this paper with "+
		"'keyceremony ceremony verify TRANSCRIPT --expect \"WORDS\"' (the words as written here); a transcript changed, re-chained or cut short fails.", "", "L", false)
	pdf.Ln(3)
	pdf.SetFont(sans, "", 9)
	pdf.MultiCell(0, 5, "Final hash words, written by hand:", "", "L", false)
	for i := 0; i < 4; i++ {
		pdf.Ln(7)
		y := pdf.GetY()
		pdf.Line(18, y, 190, y)
	}
	pdf.Ln(2)
	anchors(pdf, t.Entries)

	signatures(pdf, t.Participants)
	return output(pdf, w)
}

// entry prints one transcript entry: a shaded title line, then what was
// recorded about it.
func entry(pdf *gofpdf.Fpdf, e transcript.Entry) {
	if _, h := pdf.GetPageSize(); pdf.GetY() > h-50 {
		pdf.AddPage()
	}
	pdf.SetFont(sans, "B", 9.5)
	pdf.SetFillColor(235, 238, 243)
	result := strings.ToUpper(e.Result)
	if e.Rehearsal {
		result += " (rehearsal)"
	}
	pdf.CellFormat(0, 6, fmt.Sprintf("%d. %s - %s    %s UTC    %s", e.Seq, e.Step, e.Action, e.Time.UTC().Format("2006-01-02 15:04:05"), result), "", 1, "L", true, 0, "")
	if e.Error != "" {
		field(pdf, "Error", e.Error, false)
	}
	if len(e.Actors) > 0 {
		var who []string
		for _, a := range e.Actors {
			who = append(who, fmt.Sprintf("%s (%s, %s)", a.Name, a.Role, a.Time.UTC().Format("15:04:05")))
		}
		field(pdf, "Confirmed by", strings.Join(who, "; "), false)
	}
	for _, d := range e.Details {
		field(pdf, d.Key, d.Value, false)
	}
	for _, f := range e.Inputs {
		field(pdf, "Input", fmt.Sprintf("%s\nSHA-256 %s (%d bytes)", f.Path, f.SHA256, f.Size), false)
	}
	for _, f := range e.Outputs {
		field(pdf, "Output", fmt.Sprintf("%s\nSHA-256 %s (%d bytes)", f.Path, f.SHA256, f.Size), false)
	}
	if s := e.Signature; s != nil {
		field(pdf, "Token signature", fmt.Sprintf("%s by the key %s over the previous entry's hash", s.Algorithm, keyFingerprint(s)), false)
	}
	pdf.SetFont(mono, "", 6.5)
	pdf.SetTextColor(90, 90, 90)
	line := "entry hash " + e.Hash + "   previous " + e.Prev
	if e.MAC != "" {
		line += "   quorum MAC " + e.MAC[:16] + "..."
	}
	pdf.MultiCell(0, 3.5, line, "", "L", false)
	pdf.SetTextColor(0, 0, 0)
	pdf.Ln(2)
}

// signatures prints one signature line per participant.
func signatures(pdf *gofpdf.Fpdf, people []Person) {
	pdf.AddPage()
	heading(pdf, "Signatures")
	pdf.SetFont(sans, "", 9.5)
	pdf.MultiCell(0, 5, "By signing, each participant confirms they were present, that the steps above happened as recorded, "+
		"and that the final hash read aloud matched the one printed on this page.", "", "L", false)
	pdf.Ln(4)
	for _, p := range people {
		if _, h := pdf.GetPageSize(); pdf.GetY() > h-40 {
			pdf.AddPage()
		}
		pdf.Ln(12)
		y := pdf.GetY()
		pdf.Line(18, y, 110, y)
		pdf.Line(125, y, 190, y)
		pdf.SetXY(18, y+1)
		pdf.SetFont(sans, "B", 9)
		pdf.CellFormat(92, 4.5, p.Name, "", 0, "L", false, 0, "")
		pdf.SetXY(125, y+1)
		pdf.SetFont(sans, "", 8)
		pdf.CellFormat(65, 4.5, "Date", "", 1, "L", false, 0, "")
		pdf.SetFont(sans, "", 8.5)
		pdf.CellFormat(92, 4.5, p.Role, "", 1, "L", false, 0, "")
	}
}

// keyFingerprint is the SPKI SHA-256 of a signature anchor's key, shortened.
func keyFingerprint(s *transcript.Signature) string {
	_, der, err := s.PublicKey()
	if err != nil {
		return "(unreadable key)"
	}
	sum := sha256.Sum256(der)
	return "SPKI SHA-256 " + hex.EncodeToString(sum[:8]) + "..."
}

// anchors says, under the final hash, what anchors the transcript beyond
// this paper.
func anchors(pdf *gofpdf.Fpdf, entries []transcript.Entry) {
	var signed []string
	mac := 0
	for _, e := range entries {
		if e.Signature != nil {
			signed = append(signed, fmt.Sprint(e.Seq))
		}
		if e.MAC != "" && mac == 0 {
			mac = e.Seq
		}
	}
	var parts []string
	if len(signed) > 0 {
		parts = append(parts, "the root key signed the transcript at entries "+strings.Join(signed, ", ")+" (anyone holding the root certificate checks these signatures)")
	}
	if mac != 0 {
		parts = append(parts, fmt.Sprintf("every entry from %d on carries the quorum's MAC (the custodians check it)", mac))
	}
	if len(parts) == 0 {
		return
	}
	pdf.SetFont(sans, "", 8.5)
	pdf.MultiCell(0, 4.5, "Anchors: "+strings.Join(parts, "; ")+".", "", "L", false)
}
