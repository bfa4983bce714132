package ceremony

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

func (w *world) rootCardsScript(out string, edits ...string) *script.Script {
	edits = append([]string{"delivery: [card, file]", "delivery: [card]", "not_before: 2026-12-01T00:00:00Z", "not_before: " + today()}, edits...)
	return w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:serial="+w.serial, out, edits...)
}

// TestInterruptedCeremonyResumes stops a ceremony right after each of
// several steps (as a crash would: nothing more is written) and runs the
// same script again: completed steps are not repeated, the quorum is asked
// again where a secret is needed, and the transcript is one chain.
func TestInterruptedCeremonyResumes(t *testing.T) {
	for _, stopAfter := range []string{"token", "issue-shares", "enrol-token", "generate-key", "lint-certificate"} {
		t.Run(stopAfter, func(t *testing.T) {
			w := newWorld(t, "Root 2026")
			out := filepath.Join(w.dir, "out")
			s := w.rootCardsScript(out)
			ctx, cancel := context.WithCancel(context.Background())
			e, err := New(s, Options{UnattendedTest: true, Prompter: w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), AfterStep: func(si StepInfo, _ transcript.Entry) {
				if si.ID == stopAfter {
					cancel()
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Run(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			before, err := transcript.Verify(e.TranscriptPath())
			if err != nil {
				t.Fatal(err)
			}
			if last := before.Last(); last.Step != stopAfter {
				t.Fatalf("transcript ends at %s, want %s", last.Step, stopAfter)
			}

			res, err := w.run(s, w.cardsOnly("root", "Frank Fox", "Grace Gray", "Dan Diaz"), Options{})
			if err != nil {
				t.Fatalf("resumed run: %v\n%s", err, w.log.String())
			}
			if !res.Resumed {
				t.Error("result not marked resumed")
			}
			rep, err := transcript.Verify(res.Transcript)
			if err != nil {
				t.Fatal(err)
			}
			checkStateMatchesDetails(t, rep)
			for i, en := range before.Entries {
				if rep.Entries[i].Hash != en.Hash {
					t.Fatalf("entry %d changed on resume", i+1)
				}
			}
			count := map[string]int{}
			for _, en := range rep.Entries {
				if en.OK() {
					count[en.Step]++
				}
			}
			for _, st := range []string{"begin", "token", "issue-shares", "enrol-token", "generate-key", "lint-certificate", "sign-certificate", "finish"} {
				if count[st] != 1 {
					t.Errorf("step %s recorded %d times", st, count[st])
				}
			}
			if count["resume"] != 1 {
				t.Errorf("%d resume entries", count["resume"])
			}
			// After the shares are issued, the resumed run needs the quorum once
			// more: for the enrolment or, later, to log in.
			wantUnlocks := 1
			if stopAfter != "token" && stopAfter != "issue-shares" {
				wantUnlocks = 2
			}
			if count["unlock"] != wantUnlocks {
				t.Errorf("%d unlock entries, want %d", count["unlock"], wantUnlocks)
			}
			// Exactly one root key exists, and it is the certified one.
			cert := readCert(t, filepath.Join(out, "example-root-2026.cert.pem"))
			m, _ := hsm.Open(w.module)
			defer m.Close()
			tok, err := m.OpenToken(hsm.URI{Serial: w.serial})
			if err != nil {
				t.Fatal(err)
			}
			defer tok.Close()
			rec, _ := quorum.ReadRecord(filepath.Join(out, "example-root-2026.quorum.json"))
			sec := unlockWith(t, rec, w.sharesFromCards("root", "Carol Chen", "Erin Evans", "Grace Gray")...)
			pin, _ := sec.PIN(quorum.UserPIN, 255)
			if err := tok.Login(pin); err != nil {
				t.Fatal(err)
			}
			keys, err := tok.FindKeys(hsm.Filter{Class: hsm.ClassPrivateKey})
			if err != nil || len(keys) != 1 {
				t.Fatalf("%d private keys on the token: %v", len(keys), err)
			}
			if !keys[0].Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
				t.Error("the certified key is not the key on the token")
			}
			if _, err := New(s, Options{UnattendedTest: true, Prompter: w.cardsOnly("root")}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.run(s, w.cardsOnly("root"), Options{}); err == nil || !strings.Contains(err.Error(), "already complete") {
				t.Fatalf("running a completed ceremony: %v", err)
			}
		})
	}
}

// TestFailedStepIsRecordedAndResumed: a witness who does not confirm the
// clock stops the ceremony; the refusal is in the transcript, and the rerun
// continues at the clock.
func TestFailedStepIsRecordedAndResumed(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out)
	p := w.cardsOnly("root")
	p.Decline = []string{"clock"}
	if _, err := w.run(s, p, Options{}); !errors.Is(err, ErrDeclined) || !strings.Contains(err.Error(), "run the same script again") {
		t.Fatalf("declined run: %v", err)
	}
	rep, err := transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	last := rep.Last()
	if last.Step != "clock" || last.Result != transcript.ResultError || !strings.Contains(last.Error, "not confirmed") {
		t.Fatalf("last entry = %+v", last)
	}
	// A script changed since the ceremony began cannot resume it when the
	// change touches what a recorded step used (amend.go; here the title,
	// read aloud at the begin step).
	other := w.rootCardsScript(out, "title: Example Corp Root CA 2026 - root key generation", "title: changed")
	if _, err := w.run(other, w.cardsOnly("root"), Options{}); err == nil || !strings.Contains(err.Error(), "not the script this ceremony runs") ||
		!strings.Contains(err.Error(), "title (already used by begin)") {
		t.Fatalf("resume with another script: %v", err)
	}
	s = w.rootCardsScript(out)
	if _, err := w.run(s, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	rep, err = transcript.Verify(filepath.Join(out, "example-root-2026.transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, en := range rep.Entries[:6] {
		steps = append(steps, en.Step+"/"+en.Result)
	}
	if got := strings.Join(steps, " "); got != "begin/ok air-gap/ok clock/error resume/ok clock/ok token/ok" {
		t.Errorf("entries = %s", got)
	}
}

// TestRehearsal runs the exact root script with --rehearse: a throwaway
// SoftHSM token, outputs and transcript marked REHEARSAL, and the script's
// real token untouched.
func TestRehearsal(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "air_gap: warn", "air_gap: block")
	conf := os.Getenv(softhsm.EnvConf)
	res, err := w.run(s, w.cardsOnly("rehearsal", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{Rehearse: true})
	if err != nil {
		t.Fatalf("rehearsal: %v\n%s", err, w.log.String())
	}
	if got := os.Getenv(softhsm.EnvConf); got != conf {
		t.Errorf("SOFTHSM2_CONF after the rehearsal = %q, want %q", got, conf)
	}
	if filepath.Dir(res.Transcript) != out+"-rehearsal" {
		t.Errorf("rehearsal wrote to %s", filepath.Dir(res.Transcript))
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the rehearsal wrote into the real output directory")
	}
	for _, o := range res.Outputs {
		if !strings.HasPrefix(filepath.Base(o), "REHEARSAL-") {
			t.Errorf("output %s is not marked REHEARSAL", o)
		}
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range rep.Entries {
		if !en.Rehearsal {
			t.Errorf("entry %d (%s) not marked rehearsal", en.Seq, en.Step)
		}
	}
	if !strings.Contains(pdfText(t, res.PDF), "REHEARSAL") {
		t.Error("transcript PDF not marked REHEARSAL")
	}
	if !strings.Contains(pdfText(t, w.delivery("rehearsal", "Carol Chen").Card), "REHEARSAL") {
		t.Error("share card not marked REHEARSAL")
	}
	fp, _ := os.ReadFile(filepath.Join(out+"-rehearsal", "REHEARSAL-example-root-2026.fingerprints.txt"))
	if !strings.HasPrefix(string(fp), "REHEARSAL") {
		t.Error("fingerprints file not marked REHEARSAL")
	}
	// The certificate itself says it is a rehearsal's, whatever its file is
	// renamed to: subject and a policy of its own.
	cert := readCert(t, filepath.Join(out+"-rehearsal", "REHEARSAL-example-root-2026.cert.pem"))
	if !strings.HasPrefix(cert.Subject.CommonName, "REHEARSAL ") || len(cert.Subject.Organization) != 1 || !strings.HasPrefix(cert.Subject.Organization[0], "REHEARSAL ") ||
		!certprofile.IsRehearsal(cert) || cert.CheckSignatureFrom(cert) != nil {
		t.Errorf("rehearsal certificate: subject %s, policies %v", cert.Subject, cert.Policies)
	}
	if b, err := os.ReadFile(filepath.Join(out+"-rehearsal-backup-medium", "REHEARSAL-example-root-2026.key-backup.json")); err != nil || len(b) == 0 {
		t.Errorf("the rehearsal's backup is not on its own medium: %v", err)
	}
	// The real token still has its vendor PIN and no key.
	m, _ := hsm.Open(w.module)
	defer m.Close()
	tok, err := m.OpenToken(hsm.URI{Serial: w.serial})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	if err := tok.Login(w.userPIN); err != nil {
		t.Fatalf("the real token's PIN was changed by a rehearsal: %v", err)
	}
	if keys, _ := tok.FindKeys(hsm.Filter{}); len(keys) != 0 {
		t.Errorf("the rehearsal left %d keys on the real token", len(keys))
	}
	left, _ := filepath.Glob(filepath.Join(w.tmp, "keyceremony-rehearsal-*"))
	if len(left) != 0 {
		t.Errorf("throwaway token store left behind: %v", left)
	}
	// A rehearsal is not resumable, and the real ceremony can still run.
	if _, err := New(s, Options{UnattendedTest: true, Prompter: w.cardsOnly("real"), Rehearse: true}); err == nil {
		if _, err := w.run(s, w.cardsOnly("real"), Options{Rehearse: true}); err == nil {
			t.Error("a second rehearsal into the same directory succeeded")
		}
	}
}

// TestInitializeBlankToken: a blank token is initialised with quorum-derived
// PINs, found again after SoftHSM moves it, and used to the end.
func TestInitializeBlankToken(t *testing.T) {
	w := newWorld(t, "Unrelated")
	out := filepath.Join(w.dir, "out")
	m, _ := hsm.Open(w.module)
	slots, _ := m.Slots()
	var blank *hsm.Slot
	for i := range slots {
		if slots[i].Token != nil && !slots[i].Token.Initialized {
			blank = &slots[i]
		}
	}
	m.Close()
	if blank == nil {
		t.Fatal("no blank SoftHSM slot")
	}
	s := w.writeScript("root.yaml", "root-generation.yaml", "pkcs11:slot-id="+strconv.FormatUint(uint64(blank.ID), 10), out,
		"enrol: change-pin", "enrol: initialize\n  label: Fresh Root",
		"delivery: [card, file]", "delivery: [card]", "not_before: 2026-12-01T00:00:00Z", "not_before: "+today(), "backup: true", "backup: false")
	res, err := w.run(s, w.cardsOnly("init", "Erin Evans", "Frank Fox", "Grace Gray"), Options{})
	if err != nil {
		t.Fatalf("ceremony: %v\n%s", err, w.log.String())
	}
	rep, _ := transcript.Verify(res.Transcript)
	var serial string
	checkStateMatchesDetails(t, rep)
	for _, en := range rep.Entries {
		if en.Step == "enrol-token" {
			serial = en.Detail("token serial")
		}
	}
	if serial == "" {
		t.Fatal("enrolment did not record the new serial")
	}
	rec, _ := quorum.ReadRecord(filepath.Join(out, "example-root-2026.quorum.json"))
	sec := unlockWith(t, rec, w.sharesFromCards("init", "Carol Chen", "Dan Diaz", "Erin Evans")...)
	func() {
		// Closed before the rehearsal below: the module is loaded once per
		// process, and the rehearsal points it at another token store.
		m, _ := hsm.Open(w.module)
		defer m.Close()
		tok, err := m.OpenToken(hsm.URI{Serial: serial, Token: "Fresh Root"})
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		so, _ := sec.PIN(quorum.SOPIN, 255)
		if err := tok.LoginSO(so); err != nil {
			t.Fatalf("the derived SO PIN does not open the new token: %v", err)
		}
		tok.Logout()
		user, _ := sec.PIN(quorum.UserPIN, 255)
		if err := tok.Login(user); err != nil {
			t.Fatal(err)
		}
		if _, err := tok.FindKey(hsm.Filter{Label: "example-root-2026", Class: hsm.ClassPrivateKey}); err != nil {
			t.Fatal(err)
		}
	}()

	// The same script rehearses on a blank throwaway slot.
	rres, err := w.run(s, w.cardsOnly("init-rehearsal", "Erin Evans", "Frank Fox", "Grace Gray"), Options{Rehearse: true})
	if err != nil {
		t.Fatalf("rehearsal of an initialize script: %v", err)
	}
	rrep, err := transcript.Verify(rres.Transcript)
	if err != nil || !rrep.Last().Rehearsal {
		t.Fatalf("rehearsal transcript: %v", err)
	}
}
