package quorum

import (
	"bytes"
	stdhkdf "crypto/hkdf"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var names = []string{"Carol", "Dan", "Erin", "Frank", "Grace"}

func split(t *testing.T) (*Record, *Secret, []*Share) {
	t.Helper()
	rec, sec, shares, err := Split("example-root", 3, names)
	if err != nil {
		t.Fatal(err)
	}
	return rec, sec, shares
}

// clone returns an independent copy of a share (the Collector wipes what it takes).
func clone(t *testing.T, s *Share) *Share {
	t.Helper()
	c, err := ParseShare(s.Text())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnyThresholdSubsetRecoversTheSecret(t *testing.T) {
	rec, sec, shares := split(t)
	want, err := sec.Derive(UserPIN, 32)
	if err != nil {
		t.Fatal(err)
	}
	subsets := 0
	for a := 0; a < 5; a++ {
		for b := a + 1; b < 5; b++ {
			for c := b + 1; c < 5; c++ {
				col := rec.NewCollector()
				for _, i := range []int{c, a, b} { // order must not matter
					who, err := col.Add(clone(t, shares[i]))
					if err != nil || who != names[i] {
						t.Fatalf("Add share %d: %q %v", i+1, who, err)
					}
				}
				got, err := col.Combine()
				if err != nil {
					t.Fatalf("shares %d,%d,%d: %v", a+1, b+1, c+1, err)
				}
				d, _ := got.Derive(UserPIN, 32)
				if !bytes.Equal(d, want) {
					t.Fatalf("shares %d,%d,%d recover a different secret", a+1, b+1, c+1)
				}
				if col.Have() != 0 {
					t.Error("Combine did not wipe the collected shares")
				}
				subsets++
			}
		}
	}
	if subsets != 10 {
		t.Fatalf("tried %d subsets", subsets)
	}
}

func TestBelowThresholdRecoversNothing(t *testing.T) {
	rec, _, shares := split(t)
	for _, pair := range [][2]int{{0, 1}, {2, 4}, {3, 1}} {
		col := rec.NewCollector()
		col.Add(clone(t, shares[pair[0]]))
		col.Add(clone(t, shares[pair[1]]))
		if col.Have() != 2 || col.Need() != 3 {
			t.Fatalf("progress %d/%d", col.Have(), col.Need())
		}
		if _, err := col.Combine(); !errors.Is(err, ErrNotEnough) {
			t.Fatalf("two shares: %v", err)
		}
	}
}

func TestBadSharesAreNamed(t *testing.T) {
	rec, _, shares := split(t)
	otherRec, _, otherShares := split(t)

	// A share whose value was changed but whose checksum was recomputed: only
	// the commitments can catch it.
	forged := clone(t, shares[2])
	forged.value[0] ^= 1
	forged = clone(t, forged)

	// A format-1 share (issued before record tags) claiming a different threshold.
	wrongM := v1(clone(t, shares[1]), rec)
	wrongM.Threshold = 2
	wrongM = clone(t, wrongM)

	beyond := clone(t, shares[0])
	beyond.Index = 9
	beyond = clone(t, beyond)

	tests := []struct {
		name  string
		share *Share
		want  error
		msg   string
	}{
		{"modified value", forged, ErrInvalidShare, "share 3 (Erin) is not the share issued to Erin"},
		{"other ceremony", clone(t, otherShares[0]), ErrOtherQuorum, "issued with another quorum record"},
		{"other ceremony, format 1", v1(clone(t, otherShares[0]), otherRec), ErrOtherQuorum, "another ceremony's quorum"},
		{"other threshold", wrongM, ErrInvalidShare, "share 2 (Dan) says 2-of-n"},
		{"index never issued", beyond, ErrInvalidShare, "share index 9 is not one of the 5 issued"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			col := rec.NewCollector()
			_, err := col.Add(tc.share)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v %q", err, tc.want, tc.msg)
			}
			if col.Have() != 0 {
				t.Fatal("a rejected share was kept")
			}
		})
	}

	col := rec.NewCollector()
	col.Add(clone(t, shares[0]))
	if _, err := col.Add(clone(t, shares[0])); !errors.Is(err, ErrDuplicateShare) || !strings.Contains(err.Error(), "Carol") {
		t.Fatalf("duplicate: %v", err)
	}
	if col.Have() != 1 {
		t.Fatalf("have %d after a duplicate", col.Have())
	}
}

func TestShareText(t *testing.T) {
	_, _, shares := split(t)
	s := shares[3]
	text := string(s.Text())
	if !regexp.MustCompile(`^([A-Z2-7]{4} ){19}[A-Z2-7]{4}$`).MatchString(text) {
		t.Fatalf("text %q is not 20 groups of 4", text)
	}
	lines := s.Lines()
	if len(lines) != 4 || string(bytes.Join(lines, []byte(" "))) != text {
		t.Fatalf("lines %q", lines)
	}
	variants := []string{
		text,
		strings.ToLower(text),
		strings.ReplaceAll(text, " ", "-"),
		string(bytes.Join(lines, []byte("\r\n"))),
		string(s.Compact()),
		strings.NewReplacer("O", "0", "I", "1", "B", "8").Replace(text),
	}
	for _, v := range variants {
		p, err := ParseShare([]byte(v))
		if err != nil {
			t.Fatalf("ParseShare(%q): %v", v, err)
		}
		if p.Index != 4 || p.Version() != 2 || !bytes.Equal(p.value, s.value) {
			t.Fatalf("ParseShare(%q) = %+v", v, p)
		}
	}
}

// v1 turns a share into the format of cards issued before record tags.
func v1(s *Share, rec *Record) *Share {
	s.version = 1
	copy(s.setPrefix[:], rec.setID())
	s.Threshold = rec.Threshold
	return s
}

// TestFormat1SharesStillUnlock: cards issued before record tags (18 groups)
// parse and unlock their quorum.
func TestFormat1SharesStillUnlock(t *testing.T) {
	rec, secret, shares := split(t)
	col := rec.NewCollector()
	for _, s := range shares[1:4] {
		old := v1(clone(t, s), rec)
		text := string(old.Text())
		if !regexp.MustCompile(`^([A-Z2-7]{4} ){17}[A-Z2-7]{4}$`).MatchString(text) || len(old.Lines()) != 3 {
			t.Fatalf("format-1 text %q", text)
		}
		p, err := ParseShare([]byte(text))
		if err != nil || p.Version() != 1 {
			t.Fatalf("parse format 1: %v", err)
		}
		if _, err := col.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := col.Combine()
	if err != nil || !bytes.Equal(got.b, secret.b) {
		t.Fatalf("format-1 shares recovered another secret: %v", err)
	}
}

// TestSubstitutedRecordRefusesEveryShare: a quorum record whose custodians,
// threshold or commitments were changed (or which was swapped for another
// quorum's with the same set ID) no longer matches the tag every share
// carries, so each share is refused as it is presented: nothing is combined
// and no PIN is derived, so no login is ever attempted.
func TestSubstitutedRecordRefusesEveryShare(t *testing.T) {
	rec, _, shares := split(t)
	other, _, _ := split(t)
	edits := map[string]func(r *Record){
		"custodian renamed":  func(r *Record) { r.Custodians[2].Name = "Mallory" },
		"threshold lowered":  func(r *Record) { r.Threshold = 2; r.Commitments = r.Commitments[:2] },
		"commitments forged": func(r *Record) { r.Commitments = other.Commitments },
		"another quorum's record under this set ID": func(r *Record) {
			*r = *other
			r.SetID = rec.SetID
		},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			raw, _ := rec.Marshal()
			sub, err := ParseRecord(raw)
			if err != nil {
				t.Fatal(err)
			}
			sub.Custodians = append([]Custodian(nil), sub.Custodians...)
			edit(sub)
			col := sub.NewCollector()
			for _, s := range shares {
				if _, err := col.Add(clone(t, s)); !errors.Is(err, ErrOtherQuorum) || !strings.Contains(err.Error(), "this record is not the one issued with the shares") {
					t.Fatalf("share %d against the substituted record: %v", s.Index, err)
				}
			}
			if col.Have() != 0 {
				t.Fatal("a share was kept")
			}
		})
	}
}

// TestEveryTypoIsCaught changes each character of a share to every other
// share character: the checksum must catch all of them.
func TestEveryTypoIsCaught(t *testing.T) {
	_, _, shares := split(t)
	text := shares[0].Compact()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	for i := range text {
		for _, c := range []byte(alphabet) {
			if c == text[i] {
				continue
			}
			mod := bytes.Clone(text)
			mod[i] = c
			if _, err := ParseShare(mod); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("char %d %c->%c accepted: %v", i, text[i], c, err)
			}
		}
	}
	if _, err := ParseShare(text[:len(text)-1]); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "79 characters") {
		t.Fatalf("short share: %v", err)
	}
	if _, err := ParseShare(append(bytes.Clone(text), '!')); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad character: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	rec, _, shares := split(t)
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "q.json")
	os.WriteFile(path, b, 0o600)
	back, err := ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(clone(t, shares[4])); err != nil {
		t.Fatalf("share does not verify against the re-read record: %v", err)
	}
	if back.Custodian(5) != "Grace" || back.Threshold != 3 {
		t.Fatalf("record = %+v", back)
	}
	// A record whose commitments were changed rejects the genuine shares.
	var tampered = bytes.Replace(b, []byte(rec.Commitments[1][:8]), []byte("00000000"), 1)
	os.WriteFile(path, tampered, 0o600)
	if r2, err := ReadRecord(path); err == nil {
		if err := r2.Verify(clone(t, shares[0])); !errors.Is(err, ErrOtherQuorum) {
			t.Fatalf("tampered record accepted a share: %v", err)
		}
	}
	os.WriteFile(path, bytes.Replace(b, []byte(`"threshold": 3`), []byte(`"threshold": 6`), 1), 0o600)
	if _, err := ReadRecord(path); err == nil {
		t.Fatal("record with threshold above n accepted")
	}
	os.WriteFile(path, bytes.Replace(b, []byte(`"group"`), []byte(`"grup"`), 1), 0o600)
	if _, err := ReadRecord(path); err == nil {
		t.Fatal("record with an unknown field accepted")
	}
}

// TestDerivation pins the documented construction against the standard
// library's HKDF: IKM = secret, salt = set ID, info = "keyceremony/v1/"+purpose.
func TestDerivation(t *testing.T) {
	_, sec, _ := split(t)
	for _, p := range []Purpose{UserPIN, SOPIN, BackupKEK, RecoveryKEK, TranscriptMAC} {
		got, err := sec.Derive(p, 32)
		if err != nil {
			t.Fatal(err)
		}
		want, err := stdhkdf.Key(sha256.New, sec.b, sec.setID, "keyceremony/v1/"+string(p), 32)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: derivation differs from HKDF-SHA256(secret, setID, info)", p)
		}
	}
	user, _ := sec.PIN(UserPIN, 255)
	so, _ := sec.PIN(SOPIN, 255)
	if len(user) != 32 || bytes.Equal(user, so) || !regexp.MustCompile(`^[A-Z2-7]{32}$`).Match(user) {
		t.Fatalf("PINs %q %q", user, so)
	}
	short, err := sec.PIN(UserPIN, 20)
	if err != nil || !bytes.Equal(short, user[:20]) {
		t.Fatalf("PIN for a 20-character token: %q %v", short, err)
	}
	if _, err := sec.PIN(UserPIN, 8); err == nil {
		t.Fatal("a derived PIN of 8 characters was accepted")
	}
	// The backup KEK comes only from a recovery quorum's secret; the quorum
	// that unlocks the token derives only the KEK of format-1 backups.
	if _, err := sec.RecoveryKEK(); err == nil {
		t.Fatal("the token's quorum derived the recovery KEK")
	}
	if kek, err := sec.LegacyKEK(); err != nil || len(kek) != 32 {
		t.Fatalf("format-1 KEK: %d bytes, %v", len(kek), err)
	}
	_, rsec, _, err := SplitFor("example-root", RecoveryQuorum, 2, names[:3])
	if err != nil {
		t.Fatal(err)
	}
	if kek, err := rsec.RecoveryKEK(); err != nil || len(kek) != 32 {
		t.Fatalf("recovery KEK: %d bytes, %v", len(kek), err)
	}
	if _, err := rsec.LegacyKEK(); err == nil {
		t.Fatal("the recovery quorum derived a format-1 KEK")
	}
	sec.Wipe()
	if _, err := sec.Derive(UserPIN, 16); err == nil {
		t.Fatal("Derive after Wipe")
	}
}

func TestShareFile(t *testing.T) {
	rec, _, shares := split(t)
	var buf bytes.Buffer
	pass := []byte("correct horse battery staple")
	if err := shares[1].WriteFile(&buf, pass); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), shares[1].Compact()[:12]) || !bytes.HasPrefix(buf.Bytes(), []byte("age-encryption.org/v1")) {
		t.Fatal("share file is not an age file hiding the share")
	}
	got, err := ReadFile(bytes.NewReader(buf.Bytes()), pass)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Verify(got); err != nil || got.Index != 2 {
		t.Fatalf("decrypted share: %v %d", err, got.Index)
	}
	if _, err := ReadFile(bytes.NewReader(buf.Bytes()), []byte("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := ReadFile(strings.NewReader("not age"), pass); err == nil || errors.Is(err, ErrPassphrase) {
		t.Fatalf("garbage file: %v", err)
	}
}

func TestSplitRefusesImpossibleQuorums(t *testing.T) {
	for _, tc := range []struct{ m, n int }{{1, 3}, {4, 3}, {2, 0}, {2, 256}} {
		if _, _, _, err := Split("x", tc.m, make([]string, tc.n)); err == nil {
			t.Errorf("Split %d of %d accepted", tc.m, tc.n)
		}
	}
}

func FuzzParseShare(f *testing.F) {
	_, _, shares, _ := Split("fuzz", 2, []string{"a", "b"})
	f.Add(shares[0].Text())
	f.Add([]byte("AAAA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseShare(b)
		if err != nil {
			return
		}
		again, err := ParseShare(s.Text())
		if err != nil || again.Index != s.Index || !bytes.Equal(again.value, s.value) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
