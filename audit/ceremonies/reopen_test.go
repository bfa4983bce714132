package ceremonies

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/transcript/transcripttest"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// A stored ceremony's transcript opened again holds only while it is the
// file that was loaded and still verifies; every other case is refused
// with its reason, and nothing of a refused file is shown as entries.
func TestReopen(t *testing.T) {
	load := func(t *testing.T) (string, string, Stored) {
		dir, tr := byokDir(t, false)
		c, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return dir, tr, Stored{Path: c.TranscriptPath, FinalHash: c.FinalHash, SHA256: hex.EncodeToString(c.TranscriptSHA256)}
	}

	t.Run("holds", func(t *testing.T) {
		_, _, s := load(t)
		o := Reopen(s, nil)
		if o.Refused != "" || len(o.Entries) != 6 {
			t.Fatalf("refused %q, %d entries", o.Refused, len(o.Entries))
		}
		text := o.Text()
		final, _ := hex.DecodeString(s.FinalHash)
		for _, want := range []string{"Verified again on opening", "Chain OK: 6 entries chained, 4 output files match.", "Ceremony   kms-key-2026-import (byok-wrap)",
			s.FinalHash, words.String(final), "confirmed by Alice Adams (administrator), Wendy Webb (witness), Carol Chen (custodian)",
			"wrapping algorithm: RSA_AES_KEY_WRAP_SHA_256", "output EncryptedKeyMaterial.bin"} {
			if !strings.Contains(text, want) {
				t.Errorf("the text lacks %q:\n%s", want, text)
			}
		}
		// With the hash from the paper, the text says so; another hash is refused.
		if o := Reopen(s, final); o.Refused != "" || !strings.Contains(o.Text(), "the final hash is the one written on the signed paper") {
			t.Errorf("with the paper's hash: %q\n%s", o.Refused, o.Text())
		}
		if o := Reopen(s, bytes.Repeat([]byte{7}, 32)); !strings.Contains(o.Refused, "differs from the one on the paper") || o.Entries != nil {
			t.Errorf("with another paper hash: %q", o.Refused)
		}
	})

	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir, tr string)
		reason string
	}{
		{"an entry edited", func(t *testing.T, _, tr string) {
			raw, _ := os.ReadFile(tr)
			os.WriteFile(tr, bytes.Replace(raw, []byte("Wendy Webb"), []byte("Wendy Wolf"), 1), 0o600)
		}, "it does not verify: transcript entry 2 (step inputs): its contents do not match its hash (the entry was changed)"},
		{"an output changed", func(t *testing.T, dir, _ string) {
			os.WriteFile(filepath.Join(dir, "EncryptedKeyMaterial.bin"), []byte("other"), 0o600)
		}, "output file EncryptedKeyMaterial.bin has changed"},
		{"rewritten and re-chained in full", func(t *testing.T, _, tr string) {
			transcripttest.Rechain(t, tr, func(es []transcript.Entry) []transcript.Entry {
				es[1].Actors[1].Name = "Mallory Moss"
				return es
			})
		}, "it is not the transcript that was loaded"},
		{"the closing entry rewritten", func(t *testing.T, _, tr string) {
			transcripttest.Rechain(t, tr, func(es []transcript.Entry) []transcript.Entry {
				es[len(es)-1].Action = "Transcript PDF (replaced)"
				return es
			})
		}, "its closing entry was rewritten"},
		{"cut short", func(t *testing.T, _, tr string) {
			transcripttest.Rechain(t, tr, func(es []transcript.Entry) []transcript.Entry { return es[:len(es)-1] })
		}, "the transcript is INCOMPLETE"},
		{"gone", func(t *testing.T, _, tr string) { os.Remove(tr) }, "cannot be read where it was loaded from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, tr, s := load(t)
			tc.change(t, dir, tr)
			o := Reopen(s, nil)
			if !strings.Contains(o.Refused, tc.reason) {
				t.Fatalf("refused %q, want %q", o.Refused, tc.reason)
			}
			text := o.Text()
			if !strings.HasPrefix(text, "REFUSED: ") || o.Entries != nil || strings.Contains(text, "Entries\n") || strings.Contains(text, "Verified again") {
				t.Errorf("a refused transcript shown as evidence:\n%s", text)
			}
		})
	}
}
