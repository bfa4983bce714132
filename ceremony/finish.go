package ceremony

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/paper"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

func finishStep() *step {
	return &step{
		id: stepFinish, title: "Ceremony completed",
		do:      "Every participant confirms the ceremony is complete; the transcript PDF is printed and signed, and the final hash read aloud.",
		check:   "All steps are recorded.",
		record:  "The closing entry, whose hash is the final hash; then the transcript PDF with its hash.",
		confirm: script.Roles, outputs: []string{"transcript.pdf"},
		run: func(ctx context.Context, r *stepRun) error {
			e := r.e
			var facts []Fact
			for _, f := range e.fingerprints {
				facts = append(facts, Fact{Label: f.Label, Value: fmt.Sprintf("%x", f.SHA256), Words: words.String(f.SHA256)})
			}
			outputs := 0
			for _, en := range e.tw.Entries() {
				for _, o := range en.Outputs {
					facts = append(facts, Fact{Label: "Output", Value: o.Path})
					outputs++
				}
			}
			r.detail("outputs recorded", fmt.Sprint(outputs))
			return r.confirmStep(ctx, "The ceremony is complete and the transcript is a true record of it.", facts)
		},
	}
}

// finish writes the transcript PDF after the closing entry, records it, and
// shows the final hash.
func (e *Engine) finish(ctx context.Context) (*Result, error) {
	entries := e.tw.Entries()
	final := entries[len(entries)-1]
	name := e.name("transcript.pdf")
	path := filepath.Join(e.outDir, name)
	if _, err := os.Stat(path); err == nil {
		// Left by a crash between the closing entry and the PDF's entry.
		if err := os.Rename(path, fmt.Sprintf("%s.incomplete-%s", path, time.Now().UTC().Format("20060102T150405Z"))); err != nil {
			return nil, err
		}
	}
	doc := paper.Transcript{
		Title: e.s.Title, Kind: string(e.s.Kind), CeremonyID: e.s.ID, ScriptPath: e.s.Path,
		ScriptSHA256: e.s.SHA256[:], Rehearsal: e.opt.Rehearse, Entries: entries, Fingerprints: e.fingerprints, Created: time.Now(),
	}
	for _, p := range e.s.Participants {
		doc.Participants = append(doc.Participants, paper.Person{Name: p.Name, Role: p.Role.Title()})
	}
	var buf bytes.Buffer
	if err := paper.TranscriptPDF(&buf, doc); err != nil {
		return nil, err
	}
	if err := writeExcl(path, buf.Bytes()); err != nil {
		return nil, err
	}
	f, err := transcript.HashFile(path, name)
	if err != nil {
		return nil, err
	}
	if _, err := e.tw.Append(transcript.Entry{Step: "transcript-pdf", Action: "transcript PDF written for printing and signing",
		Outputs: []transcript.File{f}, Rehearsal: e.opt.Rehearse,
		Details: []transcript.Detail{{Key: "final hash (entry " + fmt.Sprint(final.Seq) + ")", Value: final.Hash}}}); err != nil {
		return nil, err
	}
	e.outputs = append(e.outputs, path)
	fh := final.HashBytes()
	anchors := anchorSummary(e.tw.Entries())
	facts := []Fact{
		{Label: fmt.Sprintf("Final hash (entry %d)", final.Seq), Value: final.Hash, Words: words.String(fh)},
		{Label: "Transcript", Value: e.TranscriptPath()},
		{Label: "Transcript PDF", Value: path},
	}
	for _, a := range anchors {
		facts = append(facts, Fact{Label: "Anchor", Value: a})
	}
	if err := e.p.Inform(ctx, Notice{Step: "transcript-pdf", Title: "Final hash: read the words aloud, compare them with the printed transcript, and write them by hand on it before signing", Facts: facts}); err != nil {
		return nil, err
	}
	return &Result{Transcript: e.TranscriptPath(), PDF: path, Outputs: e.outputs, FinalHash: fh, Resumed: e.resumed, Anchors: anchors}, nil
}

// anchorSummary says which entries carry which anchor.
func anchorSummary(entries []transcript.Entry) []string {
	var signed []string
	mac := 0
	for _, en := range entries {
		if en.Signature != nil {
			signed = append(signed, fmt.Sprint(en.Seq))
		}
		if en.MAC != "" && mac == 0 {
			mac = en.Seq
		}
	}
	var out []string
	if len(signed) > 0 {
		out = append(out, "the root key signed the transcript at entries "+strings.Join(signed, ", ")+": the root certificate verifies them")
	}
	if mac != 0 {
		out = append(out, fmt.Sprintf("the quorum's MAC is on entries %d-%d: the custodians check it", mac, entries[len(entries)-1].Seq))
	}
	return out
}
