package ceremony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// Amending a script. A step can fail after the unlock for a reason running
// the same script again cannot fix: the token cannot make the key type the
// script names, say. Then the script must change; but shares were issued and
// the token enrolled, and abandoning the output directory would throw that
// away although nothing irreversible depends on the part that changes.
//
// So a ceremony resumed with a changed script is amended, not refused, when
// every step already recorded used only parts of the script that did not
// change. The begin step keeps the exact script it started with as an output
// (<prefix>.script.yaml, hashed in the transcript); each amendment is an
// entry of its own, "amend-script", confirmed by the administrator and the
// witness, recording the old and new SHA-256, the sections that changed, and
// a copy of the new script (<prefix>.script-N.yaml). The chain is untouched:
// the amendment is appended like any entry, and a verifier sees which script
// governed which entries. The kind, the ceremony id and the output section
// never change; neither does a section a recorded step used (the quorum once
// shares exist, the token once it was identified, the key once generated).

// stepUses names the script's top-level sections each step depends on; an
// amendment may not change a section a recorded step used. A step missing
// here is taken to depend on everything.
var stepUses = map[string][]string{
	stepBegin: {"title", "participants"}, "air-gap": {"preflight"}, "clock": {}, "token": {"token"},
	"free-space": {"preflight", "output"}, "sign-in": {"participants"},
	"issue-shares": {"quorum", "participants"}, "unlock": {"quorum", "participants"}, "enrol-token": {"token", "quorum"},
	"issue-recovery-shares": {"recovery", "participants"}, "unlock-recovery": {"recovery", "participants"},
	stepShareDelivery: {"quorum", "recovery", "participants"}, stepShareDestroyed: {"quorum", "recovery", "participants"},
	"generate-key": {"key"}, "backup-key": {"key", "backup", "quorum", "recovery"}, stepAnchor: {}, stepSeal: {},
	"lint-certificate": {"key", "certificate"}, "sign-certificate": {"key", "certificate"},
	"inputs": {"quorum", "recovery", "signing", "byok", "backup", "restore"}, "issuer-key": {"signing"},
	"lint-subordinate": {"signing"}, "sign-subordinate": {"signing"}, "lint-cross-certificate": {"signing"},
	"sign-cross-certificate": {"signing"}, "lint-crl": {"signing"}, "sign-crl": {"signing"},
	"restore-key": {"restore", "recovery"}, "prove-key": {"restore"},
	"wrap-plan": {"byok"}, "byok-key": {"byok"}, "wrap": {"byok"}, "token-copy": {"byok"}, "handover": {"byok"},
	"resume": {}, stepAmend: {},
}

// fixedSections never change by amendment: they are what the ceremony is.
var fixedSections = []string{"kind", "id", "output"}

const stepAmend = "amend-script"

// scriptInEffect is the SHA-256 of the script that governs the transcript's
// last entries, and the output file holding a copy of it ("" when the
// transcript keeps none: written before scripts were kept).
func scriptInEffect(entries []transcript.Entry) (sum, copyName string) {
	sum = entries[0].Detail("script sha256")
	for _, o := range entries[0].Outputs {
		if strings.HasSuffix(o.Path, ".script.yaml") {
			copyName = o.Path
		}
	}
	for _, en := range entries {
		if en.Step == stepAmend && en.OK() {
			sum = en.Detail("new script sha256")
			copyName = ""
			for _, o := range en.Outputs {
				copyName = o.Path
			}
		}
	}
	return sum, copyName
}

// changedSections are the script's top-level sections whose content differs
// (comments and layout aside).
func changedSections(oldRaw, newRaw []byte) ([]string, error) {
	var a, b map[string]any
	if err := yaml.Unmarshal(oldRaw, &a); err != nil {
		return nil, fmt.Errorf("the script the ceremony started with: %w", err)
	}
	if err := yaml.Unmarshal(newRaw, &b); err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// amendment is a changed script found acceptable, to be recorded.
type amendment struct {
	prevSum, newSum string
	changed         []string
	n               int              // the amendment's number, for its copy's name
	capabilities    []CapabilityLine // the token probed again for the changed script
}

// checkAmendment checks, before anything is written, that the changed
// script may take over this transcript, and says why not otherwise.
func (e *Engine) checkAmendment(entries []transcript.Entry) (*amendment, error) {
	prevSum, copyName := scriptInEffect(entries)
	a := &amendment{prevSum: prevSum, newSum: hex.EncodeToString(e.s.SHA256[:]), n: 1}
	refuse := func(why string) error {
		return fmt.Errorf("resume ceremony: %s is not the script this ceremony runs (SHA-256 %s): %s", e.s.Path, prevSum, why)
	}
	if copyName == "" {
		return nil, refuse("this transcript keeps no copy of that script, so a changed one cannot be checked against it; run that script, or start a new ceremony in a new output directory")
	}
	oldRaw, err := os.ReadFile(filepath.Join(e.outDir, copyName))
	if err != nil {
		return nil, refuse(fmt.Sprintf("its copy %s cannot be read (%v)", copyName, err))
	}
	if sum := sha256.Sum256(oldRaw); hex.EncodeToString(sum[:]) != prevSum {
		return nil, refuse(fmt.Sprintf("its copy %s has changed since it was recorded", copyName))
	}
	if a.changed, err = changedSections(oldRaw, e.s.Raw); err != nil {
		return nil, refuse(err.Error())
	}
	used := map[string][]string{}
	for _, en := range entries {
		if en.Step == stepAmend && en.OK() {
			a.n++
		}
		if !en.OK() {
			continue
		}
		secs, ok := stepUses[en.Step]
		if !ok {
			return nil, refuse(fmt.Sprintf("step %s is recorded, and it may depend on any part of the script", en.Step))
		}
		for _, s := range secs {
			used[s] = append(used[s], en.Step)
		}
	}
	var bad []string
	for _, c := range a.changed {
		switch {
		case slices.Contains(fixedSections, c):
			bad = append(bad, fmt.Sprintf("%s (what the ceremony is)", c))
		case len(used[c]) > 0:
			bad = append(bad, fmt.Sprintf("%s (already used by %s)", c, strings.Join(uniq(used[c]), ", ")))
		}
	}
	if len(bad) > 0 {
		return nil, refuse("it changes " + strings.Join(bad, "; ") + ". Change only what no recorded step used, or start a new ceremony in a new output directory")
	}
	if len(a.changed) == 0 {
		a.changed = []string{"(layout or comments only)"}
	}
	if a.capabilities, err = e.amendedCapabilities(); err != nil {
		return nil, err
	}
	return a, nil
}

// recordAmendment has the administrator and the witness confirm the
// amendment, keeps a copy of the new script and records both.
func (e *Engine) recordAmendment(ctx context.Context, a *amendment) error {
	r := &stepRun{e: e, st: &step{id: stepAmend, title: "Script amended"}, entry: transcript.Entry{Step: stepAmend, Action: "ceremony script amended", Rehearsal: e.opt.Rehearse}}
	r.entry.Inputs = append(r.entry.Inputs, transcript.File{Path: e.s.Path, SHA256: a.newSum, Size: int64(len(e.s.Raw))})
	r.detail("old script sha256", a.prevSum)
	r.detail("new script sha256", a.newSum)
	r.detail("sections changed", strings.Join(a.changed, ", "))
	for _, l := range a.capabilities {
		r.detail("capability: "+l.Operation, string(l.Where)+": "+l.Detail)
	}
	facts := []Fact{{Label: "Script now", Value: fmt.Sprintf("%s (SHA-256 %s)", e.s.Path, a.newSum)},
		{Label: "Was", Value: "SHA-256 " + a.prevSum}, {Label: "Sections changed", Value: strings.Join(a.changed, ", ")}}
	if err := r.confirm(ctx, "The script was changed after a step failed that running it again could not fix; the change was reviewed, and it touches nothing a recorded step used.",
		facts, e.people(script.Administrator, script.Witness)); err != nil {
		return err
	}
	if _, err := r.output(fmt.Sprintf("script-%d.yaml", a.n), e.s.Raw); err != nil {
		return err
	}
	_, err := e.tw.Append(r.entry)
	return err
}

// amendedCapabilities probes the token again for the changed script, once
// the token step has identified it: a change the token cannot carry out
// either is refused now, before anything is recorded.
func (e *Engine) amendedCapabilities() ([]CapabilityLine, error) {
	// The token's identity as the recorded steps found it (restored again,
	// the same way, when the steps' state is restored).
	for _, step := range []string{"token", "enrol-token"} {
		if en, ok := e.done[step]; ok {
			restore := map[string]func(context.Context, *Engine, transcript.Entry) error{"token": restoreToken, "enrol-token": restoreEnrol}[step]
			if err := restore(context.Background(), e, en); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := e.done["token"]; !ok {
		return nil, nil // the token step, still to run, probes it
	}
	slot, err := e.findSlot()
	if err != nil {
		return nil, err
	}
	report, err := e.probeSlot(slot)
	if err != nil {
		return nil, err
	}
	if b := report.Blocking(); len(b) > 0 {
		return nil, &CannotRunError{Token: report.Identity.Label, Lines: b}
	}
	return report.Lines, nil
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
