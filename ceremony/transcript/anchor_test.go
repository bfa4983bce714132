package transcript_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/transcript/transcripttest"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// anchored writes a transcript as a ceremony with a signing key does: a plan
// in the first entry, the quorum MAC from the unlock on, a signature anchor
// once the key exists and a seal over the closing entry, then the PDF entry.
func anchored(t *testing.T, key crypto.Signer, macKey []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.jsonl")
	w, err := transcript.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	plan, _ := transcript.Plan{Steps: []string{"begin", "unlock", "generate-key", "anchor", "sign", "finish", "seal"},
		MACFrom: "unlock", Signed: []string{"anchor", "seal"}, Key: "the root key"}.Detail()
	sign := func() *transcript.Signature {
		digest, h, alg, err := transcript.AnchorDigest(key.Public(), w.Last().Hash)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := key.Sign(rand.Reader, digest, h)
		if err != nil {
			t.Fatal(err)
		}
		s, err := transcript.NewSignature(key.Public(), alg, sig)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	add := func(e transcript.Entry) {
		if _, err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	add(transcript.Entry{Step: "begin", Action: "script identified", Details: []transcript.Detail{{Key: "kind", Value: "root-generation"}, plan}})
	w.SetMACKey(macKey)
	add(transcript.Entry{Step: "unlock", Action: "quorum unlocked"})
	add(transcript.Entry{Step: "generate-key", Action: "key generated", Details: []transcript.Detail{{Key: "key", Value: "ec-p384"}}})
	add(transcript.Entry{Step: "anchor", Action: "transcript anchored", Signature: sign()})
	add(transcript.Entry{Step: "sign", Action: "certificate signed", Details: []transcript.Detail{{Key: "serial", Value: "4a11"}}})
	add(transcript.Entry{Step: "finish", Action: "ceremony completed"})
	add(transcript.Entry{Step: "seal", Action: "transcript sealed", Signature: sign()})
	add(transcript.Entry{Step: transcript.StepPDF, Action: "PDF written"})
	return path
}

func p384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func selfSigned(t *testing.T, k crypto.Signer) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestAnchoredTranscriptVerifies(t *testing.T) {
	for name, key := range map[string]crypto.Signer{"ecdsa-p384": p384(t), "rsa": mustRSA(t)} {
		t.Run(name, func(t *testing.T) {
			mac := []byte("0123456789abcdef0123456789abcdef")
			path := anchored(t, key, mac)
			rep, err := transcript.Verify(path)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Plan == nil || len(rep.Signatures) != 2 || rep.MACFrom != 2 || !rep.Complete() {
				t.Fatalf("plan %v, %d signatures, MAC from %d, complete %v", rep.Plan, len(rep.Signatures), rep.MACFrom, rep.Complete())
			}
			if err := transcript.CheckMACs(rep.Entries, mac); err != nil {
				t.Fatal(err)
			}
			final, _ := rep.Final()
			if final.Step != "seal" {
				t.Errorf("final entry %s, want the seal", final.Step)
			}
			fh, _ := hex.DecodeString(final.Hash)
			if err := rep.Check(transcript.Expect{FinalHash: fh, Root: selfSigned(t, key)}); err != nil {
				t.Fatalf("check with the paper and the root: %v", err)
			}
			// Signature anchors alone are enough for a verifier without paper.
			if err := rep.Check(transcript.Expect{}); err != nil {
				t.Fatal(err)
			}
			if got := rep.AnchorOf(3); len(got) != 3 || !strings.Contains(got[0], "entry 4") {
				t.Errorf("anchors of entry 3: %v", got)
			}
			// The words written on paper work as well as the hex.
			if b, err := transcript.ParseHash(strings.ToUpper(words.String(fh))); err != nil || hex.EncodeToString(b) != final.Hash {
				t.Errorf("words: %x %v", b, err)
			}
		})
	}
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestForgedTranscriptFails is the review's finding: an entry in the middle
// changed and every later hash recomputed. The chain is whole again, but the
// token's signatures and the quorum's MACs were made over the old hashes.
func TestForgedTranscriptFails(t *testing.T) {
	key, mac := p384(t), []byte("0123456789abcdef0123456789abcdef")
	cases := map[string]struct {
		edit func([]transcript.Entry) []transcript.Entry
		want string
	}{
		"changed before the anchor": {func(es []transcript.Entry) []transcript.Entry {
			es[2].Details[0].Value = "rsa-2048"
			return es
		}, "transcript entry 4 (step anchor): the token's signature does not verify"},
		"changed between the anchors": {func(es []transcript.Entry) []transcript.Entry {
			es[4].Details[0].Value = "4a12"
			return es
		}, "transcript entry 7 (step seal): the token's signature does not verify"},
		"anchors stripped": {func(es []transcript.Entry) []transcript.Entry {
			es[3].Signature, es[6].Signature = nil, nil
			return es
		}, "transcript entry 4 (step anchor): the plan says step anchor carries the token's signature"},
		"MAC stripped from the end": {func(es []transcript.Entry) []transcript.Entry {
			es[7].MAC = ""
			return es
		}, "transcript entry 8 (step transcript-pdf): it carries no quorum MAC although every entry from 2 on must"},
		"entry appended without the quorum": {func(es []transcript.Entry) []transcript.Entry {
			return append(es, transcript.Entry{Step: "note", Action: "added later", Result: "ok"})
		}, "transcript entry 9 (step note): it carries no quorum MAC"},
		"plan removed, all anchors removed": {func(es []transcript.Entry) []transcript.Entry {
			es[0].Details = es[0].Details[:1]
			for i := range es {
				es[i].Signature, es[i].MAC = nil, ""
			}
			return es
		}, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := anchored(t, key, mac)
			orig, _ := transcript.Verify(path)
			origFinal, _ := orig.Final()
			fh, _ := hex.DecodeString(origFinal.Hash)
			transcripttest.Rechain(t, path, c.edit)
			rep, err := transcript.Verify(path)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("verify of the forgery: %v, want %q", err, c.want)
				}
				return
			}
			// Nothing internal is left to catch it: Check says it is not
			// anchored, and the paper's hash exposes it.
			if err != nil {
				t.Fatal(err)
			}
			if err := rep.Check(transcript.Expect{}); err == nil || !strings.Contains(err.Error(), "NO ANCHORS") {
				t.Errorf("check without paper: %v", err)
			}
			if err := rep.Check(transcript.Expect{FinalHash: fh}); err == nil || !strings.Contains(err.Error(), "differs from the one on the paper") {
				t.Errorf("check with the paper: %v", err)
			}
		})
	}
}

// TestForgedMACs: the forger keeps every MAC but changes an entry the
// signatures do not yet cover (an interrupted ceremony): only the quorum's
// MAC catches it, which resume checks before the token is used.
func TestForgedMACs(t *testing.T) {
	mac := []byte("0123456789abcdef0123456789abcdef")
	path := anchored(t, p384(t), mac)
	transcripttest.Rechain(t, path, func(es []transcript.Entry) []transcript.Entry {
		es = es[:3] // interrupted after generate-key
		es[2].Details[0].Value = "rsa-2048"
		return es
	})
	rep, err := transcript.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	err = transcript.CheckMACs(rep.Entries, mac)
	if err == nil || !strings.Contains(err.Error(), "transcript entry 3 (step generate-key): its quorum MAC does not match") {
		t.Fatalf("MAC check of the forgery: %v", err)
	}
	if err := transcript.CheckMACs(rep.Entries, []byte("another quorum's key.............")); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("another quorum's key: %v", err)
	}
}

// TestCheckIncompleteAndPaper: a truncated copy is incomplete and names what
// is missing; the hash on paper is never claimed for an earlier entry.
func TestCheckIncompleteAndPaper(t *testing.T) {
	key := p384(t)
	path := anchored(t, key, []byte("k"))
	full, _ := transcript.Verify(path)
	final, _ := full.Final()
	fh, _ := hex.DecodeString(final.Hash)
	transcripttest.Rechain(t, path, func(es []transcript.Entry) []transcript.Entry { return es[:5] })
	rep, err := transcript.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete() {
		t.Fatal("a truncated transcript is complete")
	}
	if _, ok := rep.Final(); ok {
		t.Error("a truncated transcript has a final hash")
	}
	err = rep.Check(transcript.Expect{})
	if err == nil || !strings.Contains(err.Error(), "INCOMPLETE: it ends at entry 5 (sign, ok); missing: finish, seal, transcript-pdf") {
		t.Errorf("incomplete: %v", err)
	}
	if err := rep.Check(transcript.Expect{AllowIncomplete: true}); err != nil {
		t.Errorf("allowed incomplete: %v", err)
	}
	err = rep.Check(transcript.Expect{FinalHash: fh, AllowIncomplete: true})
	if err == nil || !strings.Contains(err.Error(), "not in this transcript: it stops before the final entry") {
		t.Errorf("truncated with the paper: %v", err)
	}
	// Another key's root certificate is refused.
	if err := full.Check(transcript.Expect{Root: selfSigned(t, p384(t))}); err == nil || !strings.Contains(err.Error(), "not the root certificate's") {
		t.Errorf("another root: %v", err)
	}
	if _, err := transcript.ParseHash("abcd"); err == nil {
		t.Error("a short hash parsed")
	}
}

// TestAnchorDomainSeparation: an anchor message can never be the
// to-be-signed bytes of a certificate or CRL (DER SEQUENCE, 0x30), and a
// signature the key made over a certificate does not verify as an anchor.
func TestAnchorDomainSeparation(t *testing.T) {
	if m := transcript.AnchorMessage(strings.Repeat("0", 64)); m[0] == 0x30 {
		t.Fatal("an anchor message starts like a DER SEQUENCE")
	}
	key := p384(t)
	cert := selfSigned(t, key)
	path := anchored(t, key, []byte("k"))
	transcripttest.Rechain(t, path, func(es []transcript.Entry) []transcript.Entry {
		// The certificate's own signature, presented as the anchor over the
		// chain head that is its to-be-signed hash's hex.
		s, _ := transcript.NewSignature(key.Public(), "ecdsa-sha384", cert.Signature)
		es[3].Signature = s
		return es
	})
	if _, err := transcript.Verify(path); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("a certificate signature accepted as an anchor: %v", err)
	}
}
