package paper

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// pdfText extracts the text of a PDF with poppler's pdftotext.
func pdfText(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, err)
	}
	return string(out)
}

func TestShareCard(t *testing.T) {
	for _, rehearsal := range []bool{false, true} {
		rec, sec, shares, err := quorum.Split("example-root-2026", 3, []string{"Carol", "Zoë Ñúñez", "Erin", "Frank", "Grace"})
		if err != nil {
			t.Fatal(err)
		}
		sec.Wipe()
		dir := t.TempDir()
		path := filepath.Join(dir, "card.pdf")
		var buf bytes.Buffer
		card := Card{CeremonyTitle: "Example Root CA 2026", CeremonyID: "example-root-2026", SetLabel: rec.SetLabel(),
			Custodian: "Zoë Ñúñez", Index: 2, Threshold: 3, Custodians: 5, Issued: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Rehearsal: rehearsal}
		if err := ShareCard(&buf, card, shares[1]); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, buf.Bytes(), 0o600)
		text := pdfText(t, path)
		for _, want := range []string{"Zoë Ñúñez", "example-root-2026", "2 of 5 (any 3 of 5 unlock)", rec.SetLabel(), "2026-12-01 10:00:00"} {
			if !strings.Contains(text, want) {
				t.Errorf("card text lacks %q", want)
			}
		}
		for _, line := range shares[1].Lines() {
			if !strings.Contains(text, string(line)) {
				t.Errorf("card text lacks share line %q", line)
			}
		}
		if got := strings.Contains(text, "REHEARSAL"); got != rehearsal {
			t.Errorf("rehearsal=%v but REHEARSAL in text = %v", rehearsal, got)
		}

		// The share typed from the printed text is the issued share.
		var typed []string
		for _, m := range regexp.MustCompile(`(?m)^\s*[1-4]\s+((?:[A-Z2-7]{4} ){4}[A-Z2-7]{4})`).FindAllStringSubmatch(text, -1) {
			typed = append(typed, m[1])
		}
		ts, err := quorum.ParseShare([]byte(strings.Join(typed, "\n")))
		if err != nil || rec.Verify(ts) != nil || ts.Index != 2 {
			t.Fatalf("share typed from the card (%q) does not verify: %v", typed, err)
		}

		// The QR code decodes to the share text.
		png := filepath.Join(dir, "card")
		if out, err := exec.Command("pdftoppm", "-r", "150", "-png", "-singlefile", path, png).CombinedOutput(); err != nil {
			t.Fatalf("pdftoppm: %v %s", err, out)
		}
		if _, err := exec.LookPath("zbarimg"); err != nil {
			t.Fatal("zbarimg is required to read the QR code back (Debian/Ubuntu package zbar-tools; make deps-test installs it)")
		}
		out, err := exec.Command("zbarimg", "--quiet", "--raw", png+".png").Output()
		if err != nil {
			t.Fatalf("zbarimg found no QR code on the card: %v", err)
		}
		if strings.TrimSpace(string(out)) != string(shares[1].Compact()) {
			t.Fatalf("QR code = %q, want the share", out)
		}
		s, err := quorum.ParseShare(out)
		if err != nil || rec.Verify(s) != nil || s.Index != 2 {
			t.Fatalf("scanned share does not verify: %v", err)
		}
	}
}

func TestTranscriptPDF(t *testing.T) {
	dir := t.TempDir()
	w, err := transcript.Create(filepath.Join(dir, "t.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "root.pem"), []byte("pem"), 0o600)
	out, _ := transcript.HashFile(filepath.Join(dir, "root.pem"), "root.pem")
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	if _, err := w.Append(transcript.Entry{Step: "begin", Action: "ceremony started"}); err != nil {
		t.Fatal(err)
	}
	w.SetMACKey([]byte("quorum mac key"))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest, h, alg, _ := transcript.AnchorDigest(key.Public(), w.Last().Hash)
	sig, _ := key.Sign(rand.Reader, digest, h)
	anchor, _ := transcript.NewSignature(key.Public(), alg, sig)
	for _, e := range []transcript.Entry{
		{Step: "anchor", Action: "transcript anchored", Signature: anchor},
		{Step: "clock", Action: "system clock confirmed", Actors: []transcript.Actor{{Name: "Wendy Wëbb", Role: "witness", Time: at}}},
		{Step: "sign-certificate", Action: "root certificate signed", Outputs: []transcript.File{out}, Details: []transcript.Detail{{Key: "serial", Value: "7f01"}}},
		{Step: "enrol-token", Action: "PIN change failed", Result: transcript.ResultError, Error: "token removed"},
	} {
		if _, err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	scriptHash := sha256.Sum256([]byte("script"))
	fp := sha256.Sum256([]byte("key"))
	path := filepath.Join(dir, "t.pdf")
	var buf bytes.Buffer
	err = TranscriptPDF(&buf, Transcript{
		Title: "Example Root CA 2026", Kind: "root-generation", CeremonyID: "example-root-2026", ScriptPath: "root.yaml",
		ScriptSHA256: scriptHash[:], Entries: w.Entries(), Created: at,
		Participants: []Person{{"Alice Adams", "Ceremony Administrator"}, {"Wendy Wëbb", "Internal Witness"}},
		Fingerprints: []Fingerprint{{"Root public key", fp[:]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, buf.Bytes(), 0o600)
	text := pdfText(t, path)
	final := w.Last()
	// pdftotext wraps long lines; compare without line structure.
	flat := strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		"Example Root CA 2026", "root-generation",
		hexGroups(scriptHash[:])[:19], words.Encode(scriptHash[:])[0],
		"1. begin - ceremony started", "3. clock - system clock confirmed",
		"Wendy Wëbb (witness, 09:30:00)", "serial 7f01", "root.pem", out.SHA256[:16],
		"5. enrol-token - PIN change failed", "ERROR", "token removed",
		"Final hash (entry 5)", words.String(final.HashBytes())[:40],
		"Token signature ecdsa-sha256 by the key SPKI SHA-256", "quorum MAC " + final.MAC[:16],
		"keyceremony ceremony verify TRANSCRIPT --expect", "Final hash words, written by hand",
		"Anchors: the root key signed the transcript at entries 2", "every entry from 2 on carries the quorum's MAC",
		hexGroups(fp[:])[:19], "Signatures", "Alice Adams", "Ceremony Administrator",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("transcript PDF lacks %q", want)
		}
	}
	if strings.Contains(text, "REHEARSAL") {
		t.Error("production transcript marked REHEARSAL")
	}
}
