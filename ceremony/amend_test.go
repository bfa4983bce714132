package ceremony

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// interruptAfter runs s until step stop is recorded, as a crash would leave it.
func (w *world) interruptAfter(t *testing.T, s *script.Script, stop string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := New(s, Options{UnattendedTest: true, Prompter: w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), AfterStep: func(si StepInfo, _ transcript.Entry) {
		if si.ID == stop {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
}

// rewriteScript changes the script as first written, in place (as a
// reviewed edit would), and loads it again.
func rewriteScript(t *testing.T, s *script.Script, from, to string) *script.Script {
	t.Helper()
	if err := os.WriteFile(s.Path, s.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return rewrite(t, s, func(text string) string { return strings.Replace(text, from, to, 1) })
}

func entryCount(t *testing.T, path string) int {
	t.Helper()
	rep, err := transcript.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(rep.Entries)
}

// TestAmendedScriptResumes: after shares were issued and the token enrolled,
// a script whose key section changed takes over the output directory: the
// amendment is confirmed and recorded with a copy of the new script, and the
// ceremony completes with the new key type. A change to a section a recorded
// step used (the quorum, the preflight) is refused before anything is
// written.
func TestAmendedScriptResumes(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "backup: true", "backup: false")
	w.interruptAfter(t, s, "enrol-token")
	tr := filepath.Join(out, "example-root-2026.transcript.jsonl")
	before := entryCount(t, tr)

	for _, bad := range []struct{ from, to, want string }{
		{"threshold: 3", "threshold: 2", "quorum (already used by share-delivery, issue-shares, unlock, enrol-token)"},
		{"min_free_mb: 16", "min_free_mb: 17", "preflight (already used by air-gap, free-space)"},
	} {
		ns := rewriteScript(t, s, bad.from, bad.to)
		_, err := w.run(ns, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "not the script this ceremony runs") {
			t.Errorf("%s: err = %v, want the change refused naming %q", bad.to, err, bad.want)
		}
		if n := entryCount(t, tr); n != before {
			t.Errorf("a refused amendment wrote %d entries", n-before)
		}
		os.WriteFile(s.Path, s.Raw, 0o600)
	}

	ns := rewriteScript(t, s, "type: ec-p384", "type: rsa-3072")
	res, err := w.run(ns, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
	if err != nil {
		t.Fatalf("amended run: %v\n%s", err, w.log.String())
	}
	rep, err := transcript.Verify(res.Transcript)
	if err != nil {
		t.Fatal(err)
	}
	amend := entryByStep(t, rep, stepAmend)
	// The amendment is anchored like any entry: the quorum's MAC (it comes
	// after the unlock), and the chain the token's signatures cover.
	if amend.MAC == "" {
		t.Error("the amend-script entry carries no quorum MAC")
	}
	if err := rep.Check(transcript.Expect{}); err != nil {
		t.Errorf("the amended transcript does not pass verify's checks: %v", err)
	}
	if amend.Detail("sections changed") != "key" || amend.Detail("old script sha256") != hex.EncodeToString(s.SHA256[:]) ||
		amend.Detail("new script sha256") != hex.EncodeToString(ns.SHA256[:]) || len(amend.Actors) != 2 {
		t.Errorf("amendment recorded as %+v", amend)
	}
	for name, raw := range map[string][]byte{"example-root-2026.script.yaml": s.Raw, "example-root-2026.script-1.yaml": ns.Raw} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if sum := sha256.Sum256(got); err != nil || sum != sha256.Sum256(raw) {
			t.Errorf("%s is not the script it stands for (%v)", name, err)
		}
	}
	cert := checkRootCertificate(t, out)
	if k, ok := cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 3072 {
		t.Errorf("root key %T, want RSA-3072 as amended", cert.PublicKey)
	}
	if entryByStep(t, rep, "issue-shares").Seq > amend.Seq || entryByStep(t, rep, "generate-key").Seq < amend.Seq {
		t.Error("the amendment is not between the shares and the key")
	}
}

// stopAtUserPIN is a prompter whose administrator walks away when asked for
// the current user PIN the first time: the SO PIN is then already changed.
type stopAtUserPIN struct {
	*typist
	stopped bool
}

func (p *stopAtUserPIN) Secret(ctx context.Context, r SecretRequest) ([]byte, error) {
	if r.Kind == "user-pin" && !p.stopped {
		p.stopped = true
		return nil, ErrAborted
	}
	return p.typist.Secret(ctx, r)
}

// TestChangePINResumes (PIN counters): an enrolment interrupted after it
// changed the SO PIN resumes: the typed vendor SO PIN now fails, and only
// because the ceremony is resuming an interrupted enrolment does hsm allow
// the one more try that finds the SO PIN already derived. On a first run a
// refused vendor PIN stops the ceremony without another try.
func TestChangePINResumes(t *testing.T) {
	w := newWorld(t, "Root 2026")
	out := filepath.Join(w.dir, "out")
	s := w.rootCardsScript(out, "backup: true", "backup: false")
	p := &stopAtUserPIN{typist: w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans")}
	if _, err := w.run(s, p, Options{}); !errors.Is(err, ErrAborted) || !p.stopped {
		t.Fatalf("interrupted enrolment: %v", err)
	}
	res, err := w.run(s, w.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans"), Options{})
	if err != nil {
		t.Fatalf("resumed enrolment: %v\n%s", err, w.log.String())
	}
	rep, _ := transcript.Verify(res.Transcript)
	enrol := entryByStep(t, rep, "enrol-token")
	if !strings.Contains(enrol.Detail("security officer (SO) PIN"), "was already the quorum-derived PIN") ||
		!strings.Contains(enrol.Detail("user PIN"), "changed (C_SetPIN)") {
		t.Errorf("enrolment recorded %+v", enrol.Details)
	}

	// A first run whose vendor SO PIN is wrong stops at once.
	w2 := newWorld(t, "Root 2026")
	s2 := w2.rootCardsScript(filepath.Join(w2.dir, "out"), "backup: true", "backup: false")
	p2 := w2.cardsOnly("root", "Carol Chen", "Dan Diaz", "Erin Evans")
	p2.PINs.SO = "not-the-vendor-pin"
	_, err = w2.run(s2, p2, Options{})
	if err == nil || !strings.Contains(err.Error(), "the current security officer (SO) PIN was not accepted") {
		t.Fatalf("wrong vendor SO PIN: %v", err)
	}
}
