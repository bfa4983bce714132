package ceremony

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport/kmsimporttest"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/tpm2/tpm2test"
)

// The ceremonies on the second PKCS#11 implementation: tpm2-pkcs11 over a
// software TPM (hsm/tpm2/tpm2test), which reports the same serial for every
// token, generates RSA up to 3072 bits and the NIST curves only, cannot
// wrap, and makes every key able to decrypt.

// tpmSerial is the serial tpm2-pkcs11 reports for every token.
const tpmSerial = "0000000000000000"

// newTPMWorld is a world on a software TPM with one token labelled label
// (vendor PINs the world's), selected by label and the shared serial.
func newTPMWorld(t *testing.T, label string) (*world, *tpm2test.TPM) {
	t.Helper()
	var tpm *tpm2test.TPM
	w := newWorldOn(t, func(w *world) {
		tpm = tpm2test.Start(t)
		tpm.InitToken(t, label, w.soPIN, w.userPIN)
		w.module, w.serial = tpm.Module, tpmSerial
		w.uri = hsm.URI{Token: label, Serial: tpmSerial}.String()
	})
	return w, tpm
}

// rootEdits are the root template's edits the fixtures use: cards only, no
// backup, a certificate valid from today.
var rootEdits = []string{"delivery: [card, file]", "delivery: [card]", "not_before: 2026-12-01T00:00:00Z", "not_before: " + today(), "backup: true", "backup: false"}

// TestTPMCeremonies: on a TPM whose tokens share one serial, a script that
// selects by the serial alone is refused at the token step, before any share
// exists, naming both tokens and what to add; the same script with the
// label added generates a root whose certificate openssl accepts (with the
// decryption the TPM would not give up named in the transcript), signs a
// subordinate CA and a CRL with it, and a byok-wrap script is refused before
// the unlock, saying why this token cannot wrap.
func TestTPMCeremonies(t *testing.T) {
	w, tpm := newTPMWorld(t, "TPM Root")
	tpm.InitToken(t, "TPM Other", []byte("other-so-pin"), []byte("other-user-pin"))

	t.Run("a URI that selects two tokens is refused before shares exist", func(t *testing.T) {
		out := filepath.Join(w.dir, "ambiguous-out")
		s := w.writeScript("ambiguous.yaml", "root-generation.yaml", "pkcs11:serial="+tpmSerial, out, rootEdits...)
		_, err := w.run(s, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
		var ae *hsm.AmbiguousTokenError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), `"TPM Root"`) || !strings.Contains(err.Error(), `"TPM Other"`) ||
			!strings.Contains(err.Error(), "token=TPM%20Root") {
			t.Fatalf("err = %v, want both tokens named and token= to add", err)
		}
		rep, verr := transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
		if verr != nil {
			t.Fatal(verr)
		}
		if last := rep.Last(); last.Step != "token" || last.OK() {
			t.Errorf("last entry %s %s, want the failed token step", last.Step, last.Result)
		}
	})

	f := newRootFixtureIn(t, w)
	t.Run("root generation", func(t *testing.T) {
		opensslVerify(t, f.cert, f.cert)
		rep, err := transcript.Verify(filepath.Join(f.out, "example-root-2026.transcript.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var st tokenState
		if err := loadState(entryByStep(t, rep, "token"), &st, nil); err != nil || st.Identity == nil ||
			st.Identity.Label != "TPM Root" || st.Identity.Serial != tpmSerial || st.Identity.Manufacturer != "IBM" {
			t.Errorf("token identity recorded %+v (%v)", st.Identity, err)
		}
		gen := entryByStep(t, rep, "generate-key")
		var ignored []string
		for _, d := range gen.Details {
			if d.Key == "token did not honour" {
				ignored = append(ignored, d.Value)
			}
		}
		if len(ignored) != 2 || !strings.Contains(strings.Join(ignored, "\n"), "private CKA_DECRYPT=false") {
			t.Errorf("the transcript names what the token did not honour: %q", ignored)
		}
	})

	t.Run("ca-signing", func(t *testing.T) {
		inputs := filepath.Join(w.dir, "inputs")
		if err := os.MkdirAll(inputs, 0o700); err != nil {
			t.Fatal(err)
		}
		csr := opensslCSR(t, inputs, "tpm-sub", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384")
		out := filepath.Join(w.dir, "tpm-sign-out")
		s := w.writeScript("sign.yaml", "ca-signing.yaml", w.uri, out, csrPath, csrAt(filepath.Base(csr)))
		if _, err := w.run(s, f.quorumPrompter(), Options{}); err != nil {
			t.Fatalf("ceremony: %v\n%s", err, w.log.String())
		}
		opensslVerify(t, f.cert, filepath.Join(out, "example-issuing-ca-1-2026.subordinate.pem"))
		opensslCRLVerify(t, f.cert, filepath.Join(out, "example-issuing-ca-1-2026.crl.pem"))
	})

	t.Run("byok-wrap is refused before the unlock", func(t *testing.T) {
		kms := kmsimporttest.NewAWS(t)
		r := byokRun{spec: kmsimport.SymmetricDefault, alg: kmsimport.RSAAESKeyWrapSHA256, wks: kmsimport.WrappingRSA4096, generate: true, keep: true}
		e, out, err := f.byokScript(t, kms, "tpm-byok", r, []byte("import token"), time.Now().Add(23*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		report, err := e.ProbeToken()
		if err != nil {
			t.Fatal(err)
		}
		blocking := report.Blocking()
		text := ""
		for _, l := range blocking {
			text += l.String() + "\n"
		}
		if len(blocking) != 2 || !strings.Contains(text, "C_GenerateKey is not implemented") ||
			!strings.Contains(text, "CKM_RSA_AES_KEY_WRAP is not among the token's mechanisms") || !strings.Contains(text, "C_WrapKey is not implemented") ||
			!strings.Contains(text, "CKM_AES_KEY_WRAP_PAD is not among the token's mechanisms") {
			t.Fatalf("the plan does not say why this token cannot wrap:\n%s", text)
		}
		_, err = e.Run(context.Background())
		var cr *CannotRunError
		if !errors.As(err, &cr) || !strings.Contains(err.Error(), "running it again will not help") {
			t.Fatalf("run: %v", err)
		}
		rep, err := transcript.Verify(filepath.Join(out, "tpm-byok.transcript.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range rep.Entries {
			if en.Step == "unlock" {
				t.Error("the quorum was unlocked for a ceremony the token cannot carry out")
			}
		}
		if last := rep.Last(); last.Step != "token" || last.OK() {
			t.Errorf("last entry %s %s", last.Step, last.Result)
		}
	})

	t.Run("a blank TPM slot is initialised and found again among tokens with its serial", func(t *testing.T) {
		m, err := hsm.Open(w.module)
		if err != nil {
			t.Fatal(err)
		}
		blank := tpm2test.BlankSlot(t, m)
		m.Close()
		out := filepath.Join(w.dir, "init-out")
		s := w.writeScript("init.yaml", "root-generation.yaml", "pkcs11:serial="+tpmSerial+";slot-id="+strconv.FormatUint(uint64(blank), 10), out,
			append([]string{"enrol: change-pin", "enrol: initialize\n  label: TPM Fresh", "type: ec-p384", "type: rsa-3072"}, rootEdits...)...)
		res, err := w.run(s, w.cardsOnly("init", "Erin Evans", "Frank Fox", "Grace Gray"), Options{})
		if err != nil {
			t.Fatalf("ceremony: %v\n%s", err, w.log.String())
		}
		cert := filepath.Join(out, "example-root-2026.cert.pem")
		opensslVerify(t, cert, cert)
		rep, _ := transcript.Verify(res.Transcript)
		var st enrolState
		if err := loadState(entryByStep(t, rep, "enrol-token"), &st, nil); err != nil || st.Identity == nil || st.Identity.Label != "TPM Fresh" {
			t.Errorf("enrolment identity %+v (%v)", st.Identity, err)
		}
	})
}

// TestTPMAmendKeyType: a TPM root ceremony interrupted after the enrolment
// takes an amended key type: one the TPM cannot make (rsa-4096) is refused
// before anything is written, naming the token's limit; rsa-3072 is
// recorded as an amendment and the root is made and verifies.
func TestTPMAmendKeyType(t *testing.T) {
	w, _ := newTPMWorld(t, "TPM Amend")
	out := filepath.Join(w.dir, "out")
	s := w.writeScript("root.yaml", "root-generation.yaml", w.uri, out, rootEdits...)
	w.interruptAfter(t, s, "enrol-token")
	tr := filepath.Join(out, "example-root-2026.transcript.jsonl")
	before := entryCount(t, tr)

	ns := rewriteScript(t, s, "type: ec-p384", "type: rsa-4096")
	_, err := w.run(ns, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
	var cr *CannotRunError
	if !errors.As(err, &cr) || !strings.Contains(err.Error(), "1024 to 3072 bits, not 4096") || !strings.Contains(err.Error(), "rsa-3072") {
		t.Fatalf("amendment to rsa-4096: %v", err)
	}
	if n := entryCount(t, tr); n != before {
		t.Errorf("a refused amendment wrote %d entries", n-before)
	}
	ns = rewriteScript(t, s, "type: ec-p384", "type: rsa-3072")
	if _, err := w.run(ns, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{}); err != nil {
		t.Fatalf("amended run: %v\n%s", err, w.log.String())
	}
	cert := filepath.Join(out, "example-root-2026.cert.pem")
	opensslVerify(t, cert, cert)
}
