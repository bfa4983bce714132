package ceremony

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport/kmsimporttest"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// interrupt runs e until the step stopAfter is on disk, as a crash right
// after it would, and returns the transcript so far.
func interrupt(t *testing.T, s func(AfterStep func(StepInfo, transcript.Entry)) (*Engine, error), stopAfter string) *transcript.Report {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := s(func(si StepInfo, _ transcript.Entry) {
		if si.ID == stopAfter {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	rep, err := transcript.Verify(e.TranscriptPath())
	if err != nil {
		t.Fatal(err)
	}
	if last := rep.Last(); last.Step != stopAfter {
		t.Fatalf("transcript ends at %s, want %s", last.Step, stopAfter)
	}
	return rep
}

// once checks every step of a resumed ceremony is recorded once, and the
// entries before the interruption are unchanged.
func once(t *testing.T, before, after *transcript.Report, steps ...string) {
	t.Helper()
	for i, en := range before.Entries {
		if after.Entries[i].Hash != en.Hash {
			t.Fatalf("entry %d changed on resume", i+1)
		}
	}
	count := map[string]int{}
	for _, en := range after.Entries {
		if en.OK() {
			count[en.Step]++
		}
	}
	for _, st := range steps {
		if count[st] != 1 {
			t.Errorf("step %s recorded %d times", st, count[st])
		}
	}
	if count["resume"] != 1 {
		t.Errorf("%d resume entries", count["resume"])
	}
}

// TestSigningResumes interrupts a ca-signing ceremony (subordinate and CRL)
// after each signing step and resumes it: the certificate signed is the one
// linted (same serial and to-be-signed bytes), the CRL keeps the number
// confirmed at linting, and the outputs verify with openssl.
func TestSigningResumes(t *testing.T) {
	f := newRootFixture(t, "Root 2026")
	w := f.w
	inputs := filepath.Join(w.dir, "inputs")
	os.MkdirAll(inputs, 0o700)
	opensslCSR(t, inputs, "issuing-ca-1", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")
	for i, stopAfter := range []string{"issuer-key", "lint-subordinate", "sign-subordinate", "lint-crl"} {
		t.Run(stopAfter, func(t *testing.T) {
			id := fmt.Sprintf("example-issuing-ca-resume-%d", i)
			out := filepath.Join(w.dir, id)
			s := w.writeScript(id+".yaml", "ca-signing.yaml", "pkcs11:serial="+w.serial, out, "id: example-issuing-ca-1-2026", "id: "+id)
			before := interrupt(t, func(after func(StepInfo, transcript.Entry)) (*Engine, error) {
				return New(s, Options{UnattendedTest: true, Prompter: f.quorumPrompter(), AfterStep: after})
			}, stopAfter)
			res, err := w.run(s, f.quorumPrompter("Carol Chen", "Frank Fox", "Erin Evans"), Options{})
			if err != nil {
				t.Fatalf("resumed run: %v\n%s", err, w.log.String())
			}
			rep, err := transcript.Verify(res.Transcript)
			if err != nil {
				t.Fatal(err)
			}
			once(t, before, rep, "inputs", "issuer-key", "lint-subordinate", "sign-subordinate", "lint-crl", "sign-crl", "finish")
			checkStateMatchesDetails(t, rep)
			lint, sign := entryByStep(t, rep, "lint-subordinate"), entryByStep(t, rep, "sign-subordinate")
			if lint.Detail("serial") != sign.Detail("serial") || lint.Detail("tbs sha256") != sign.Detail("tbs sha256") {
				t.Errorf("signed serial %s / TBS %s, linted %s / %s", sign.Detail("serial"), sign.Detail("tbs sha256"), lint.Detail("serial"), lint.Detail("tbs sha256"))
			}
			sub := filepath.Join(out, id+".subordinate.pem")
			opensslVerify(t, f.cert, sub)
			if got := readCert(t, sub).SerialNumber.Text(16); got != trimZeros(lint.Detail("serial")) {
				t.Errorf("certificate serial %s, linted %s", got, lint.Detail("serial"))
			}
			crl := readCRL(t, filepath.Join(out, id+".crl.der"))
			if crl.Number.String() != entryByStep(t, rep, "lint-crl").Detail("crl number") {
				t.Errorf("CRL number %s, linted %s", crl.Number, entryByStep(t, rep, "lint-crl").Detail("crl number"))
			}
			if crl.Number.Int64() != int64(i+1) {
				t.Errorf("CRL number %s in the %d. ceremony", crl.Number, i+1)
			}
			opensslCRLVerify(t, f.cert, filepath.Join(out, id+".crl.pem"))
			// The root key and any key besides it: the ceremony made none.
			f.withToken(t, func(tok *hsm.Token) {
				if keys, _ := tok.FindKeys(hsm.Filter{Class: hsm.ClassPrivateKey}); len(keys) != 1 {
					t.Errorf("%d private keys on the token", len(keys))
				}
			})
		})
	}
}

// TestResumeRefusesChangedInputs: an input replaced while a ceremony was
// interrupted stops the resume (later steps rebuild their state from the
// inputs), and putting the recorded file back lets it continue.
func TestResumeRefusesChangedInputs(t *testing.T) {
	f := newRootFixture(t, "Root 2026")
	w := f.w
	inputs := filepath.Join(w.dir, "inputs")
	os.MkdirAll(inputs, 0o700)
	csr := opensslCSR(t, inputs, "issuing-ca-1", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")
	other := opensslCSR(t, inputs, "other", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")
	out := filepath.Join(w.dir, "out")
	s := w.writeScript("s.yaml", "ca-signing.yaml", "pkcs11:serial="+w.serial, out)
	interrupt(t, func(after func(StepInfo, transcript.Entry)) (*Engine, error) {
		return New(s, Options{UnattendedTest: true, Prompter: f.quorumPrompter(), AfterStep: after})
	}, "lint-subordinate")
	good, _ := os.ReadFile(csr)
	swapped, _ := os.ReadFile(other)
	os.WriteFile(csr, swapped, 0o600)
	if _, err := w.run(s, f.quorumPrompter(), Options{}); err == nil || !strings.Contains(err.Error(), "changed since entry") || !strings.Contains(err.Error(), "recorded in the transcript") {
		t.Fatalf("resume with a swapped CSR: %v", err)
	}
	// The refusal is evidence too: the transcript names the file found.
	rep, err := transcript.Verify(filepath.Join(out, "example-issuing-ca-1-2026.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	refused := rep.Last()
	if refused.Step != "inputs" || refused.OK() || len(refused.Inputs) != 1 || refused.Inputs[0].Path != csr ||
		refused.Inputs[0].SHA256 != hashOf(swapped) || refused.Detail("recorded sha256") != hashOf(good) || refused.MAC == "" {
		t.Fatalf("the refused swap is not recorded: %+v", refused)
	}
	os.WriteFile(csr, good, 0o600)
	if _, err := w.run(s, f.quorumPrompter(), Options{}); err != nil {
		t.Fatalf("resume with the recorded CSR: %v\n%s", err, w.log.String())
	}
	opensslVerify(t, f.cert, filepath.Join(out, "example-issuing-ca-1-2026.subordinate.pem"))
}

func trimZeros(h string) string {
	for len(h) > 1 && h[0] == '0' {
		h = h[1:]
	}
	return h
}

// TestBYOKResumes interrupts a byok-wrap ceremony after each step that
// touches the token and resumes it: one key, wrapped once, its token copy
// destroyed once, and what AWS unwraps is that key.
func TestBYOKResumes(t *testing.T) {
	f := newRootFixture(t, "KMS Token")
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kms := &kmsimporttest.AWS{Keys: map[kmsimport.WrappingKeySpec]*rsa.PrivateKey{kmsimport.WrappingRSA2048: priv}}
	for _, stopAfter := range []string{"wrap-plan", "byok-key", "wrap", "token-copy"} {
		t.Run(stopAfter, func(t *testing.T) {
			id := "resume-" + stopAfter
			r := byokRun{spec: kmsimport.HMAC384, alg: kmsimport.RSAAESKeyWrapSHA256, wks: kmsimport.WrappingRSA2048, generate: true, keep: false}
			token := make([]byte, 32)
			rand.Read(token)
			var out string
			before := interrupt(t, func(after func(StepInfo, transcript.Entry)) (*Engine, error) {
				e, o, err := f.byokScript(t, kms, id, r, token, time.Now().Add(23*time.Hour))
				if err == nil {
					e.opt.AfterStep = after
				}
				out = o
				return e, err
			}, stopAfter)
			// A material copy made while the key still exists, for the proof.
			var want []byte
			if stopAfter == "byok-key" {
				f.withToken(t, func(tok *hsm.Token) {
					k, err := tok.FindKey(hsm.Filter{Label: keyLabel(r.spec), Class: hsm.ClassSecretKey})
					if err != nil {
						t.Fatal(err)
					}
					want, _ = k.MAC([]byte("sixteen byte blk"))
				})
			}
			s := mustLoad(t, filepath.Join(f.w.dir, id+".yaml"))
			res, err := f.w.run(s, f.quorumPrompter("Erin Evans", "Frank Fox", "Grace Gray"), Options{})
			if err != nil {
				t.Fatalf("resumed run: %v\n%s", err, f.w.log.String())
			}
			rep, err := transcript.Verify(res.Transcript)
			if err != nil {
				t.Fatal(err)
			}
			once(t, before, rep, "inputs", "wrap-plan", "byok-key", "wrap", "token-copy", "handover", "finish")
			checkStateMatchesDetails(t, rep)
			f.withToken(t, func(tok *hsm.Token) {
				if keys, _ := tok.FindKeys(hsm.Filter{Label: keyLabel(r.spec)}); len(keys) != 0 {
					t.Errorf("%d keys labelled %s left after the destroying ceremony", len(keys), keyLabel(r.spec))
				}
			})
			ct, _ := os.ReadFile(filepath.Join(out, kmsimport.EncryptedKeyMaterialFile))
			material := kms.Unwrap(t, r.alg, r.wks, ct)
			if len(material) != 48 {
				t.Fatalf("HMAC_384 material is %d bytes", len(material))
			}
			if want != nil {
				if got := hmacOf(kmsimport.HMAC384, material, []byte("sixteen byte blk")); string(got) != string(want) {
					t.Error("the material wrapped after resuming is not the key generated before the interruption")
				}
			}
		})
	}
}

func mustLoad(t *testing.T, path string) *script.Script {
	t.Helper()
	s, err := script.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
