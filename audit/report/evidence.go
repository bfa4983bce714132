package report

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// What every report states about how far its evidence can be relied on,
// on its cover and in its JSON, whatever the report: the state of the
// ingest runs (one running, one interrupted), the coverage verdict, the
// files that failed to load and the entries the ingest left out, and the
// conflicting records in scope. A third report reuses these as they are.

// Run is one ingest run as a report states it.
type Run struct {
	ID         int64     `json:"id"`
	State      string    `json:"state"` // store.RunDone, RunCancelled, RunFailed, RunRunning, RunInterrupted
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// LastCommit is where an interrupted run stopped (its last commit).
	LastCommit  time.Time `json:"last_commit,omitzero"`
	Args        string    `json:"args"`
	PID         int64     `json:"pid,omitempty"`
	Host        string    `json:"host,omitempty"`
	FilesOK     int       `json:"files_ok"`
	FilesFailed int       `json:"files_failed"`
	KMSNew      int       `json:"kms_events_new"`
	Skipped     int       `json:"skipped"`
	Warnings    int       `json:"warnings"`
}

// IngestState sums up the runs for the cover: "complete" (every run
// finished, or was run again to completion), "running" (a process is
// ingesting now) or "incomplete" (a run was interrupted, cancelled or
// failed and not run again to completion).
type IngestState struct {
	State     string `json:"state"`
	Statement string `json:"statement"`
	// Unfinished lists the runs behind "running" or "incomplete".
	Unfinished []Run `json:"unfinished"`
}

// Ingest states.
const (
	IngestComplete   = "complete"
	IngestRunning    = "running"
	IngestIncomplete = "incomplete"
)

func runOf(r store.RunInfo) Run {
	return Run{ID: r.ID, State: r.State, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, LastCommit: r.HeartbeatAt,
		Args: r.Args, PID: r.PID, Host: r.Host, FilesOK: r.FilesOK, FilesFailed: r.FilesFailed, KMSNew: r.KMSNew,
		Skipped: r.Skipped, Warnings: r.Warnings}
}

// ingestState judges the runs: a run running now, or one that stopped
// before its end (interrupted, cancelled, failed) with no later run of
// the same arguments that finished, leaves the evidence possibly
// incomplete. (A run of the same command resumes where the other
// stopped: already loaded files are recognised by their SHA-256.)
func ingestState(runs []Run) IngestState {
	s := IngestState{State: IngestComplete, Unfinished: []Run{}}
	var running, stopped []Run
	for i, r := range runs {
		switch r.State {
		case store.RunRunning:
			running = append(running, r)
		case store.RunInterrupted, store.RunCancelled, store.RunFailed:
			redone := false
			for _, later := range runs[i+1:] {
				redone = redone || (later.State == store.RunDone && later.Args == r.Args)
			}
			if !redone {
				stopped = append(stopped, r)
			}
		}
	}
	var parts []string
	for _, r := range running {
		who := ""
		if r.PID != 0 {
			who = fmt.Sprintf(" by process %d on %s", r.PID, orNone(r.Host))
		}
		parts = append(parts, fmt.Sprintf("an ingest is running (started %s%s: %s)", FormatTime(r.StartedAt), who, r.Args))
	}
	for _, r := range stopped {
		at := "at an unknown time (recorded before schema v7)"
		if !r.LastCommit.IsZero() {
			at = "at " + FormatTime(r.LastCommit)
		}
		verb := map[string]string{store.RunInterrupted: "was interrupted", store.RunCancelled: "was cancelled", store.RunFailed: "failed"}[r.State]
		parts = append(parts, fmt.Sprintf("an ingest %s %s (started %s: %s) and was not run again to completion", verb, at, FormatTime(r.StartedAt), r.Args))
	}
	switch {
	case len(running) > 0:
		s.State = IngestRunning
	case len(stopped) > 0:
		s.State = IngestIncomplete
	}
	s.Unfinished = append(append(s.Unfinished, running...), stopped...)
	if len(parts) == 0 {
		s.Statement = fmt.Sprintf("every ingest run finished (%d run(s))", len(runs))
		return s
	}
	s.Statement = strings.Join(parts, "; ") + ": evidence may be incomplete"
	if s.State == IngestRunning {
		s.Statement += " (this report shows what was committed when it was made)"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "an unknown host"
	}
	return s
}

// FailedFile is a file (or directory) that failed to load.
type FailedFile struct {
	Path   string    `json:"path"`
	SHA256 string    `json:"sha256"` // "" when it could not be read to its end
	Size   int64     `json:"size"`
	Error  string    `json:"error"`
	At     time.Time `json:"at"`
	Run    int64     `json:"run"`
	// LoadedSince: a file with the same content or name loaded later.
	LoadedSince bool `json:"loaded_since"`
}

// SkippedEntry is an entry an ingest run left out, or a warning it gave.
type SkippedEntry struct {
	Run    int64  `json:"run"`
	Kind   string `json:"kind"` // skipped, warning
	Path   string `json:"path,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// loadRunEvidence fills the provenance's runs, failures and skipped
// entries.
func loadRunEvidence(ctx context.Context, st *store.Store, p *Provenance) error {
	runs, err := st.Runs(ctx)
	if err != nil {
		return fmt.Errorf("list the ingest runs: %w", err)
	}
	p.Runs = []Run{}
	for _, r := range runs {
		p.Runs = append(p.Runs, runOf(r))
	}
	p.Ingest = ingestState(p.Runs)
	fails, err := st.Failures(ctx)
	if err != nil {
		return fmt.Errorf("list the files that failed to load: %w", err)
	}
	p.Failures = []FailedFile{}
	for _, f := range fails {
		p.Failures = append(p.Failures, FailedFile{Path: f.Path, SHA256: hex.EncodeToString(f.SHA256), Size: f.Size,
			Error: f.Error, At: f.At, Run: f.Run, LoadedSince: f.LoadedSince})
	}
	p.FailedFiles = len(fails)
	notes, err := st.RunNotes(ctx)
	if err != nil {
		return fmt.Errorf("list what the ingest runs left out: %w", err)
	}
	p.Skipped = []SkippedEntry{}
	for _, n := range notes {
		p.Skipped = append(p.Skipped, SkippedEntry{Run: n.Run, Kind: n.Kind, Path: n.Path, Reason: n.Reason, Detail: n.Detail})
	}
	return nil
}

// SkippedSummary counts the entries left out by reason, and the warnings.
func (p Provenance) SkippedSummary() string {
	n := map[string]int{}
	warnings := 0
	for _, s := range p.Skipped {
		if s.Kind == store.NoteWarning {
			warnings++
		} else {
			n[s.Reason]++
		}
	}
	var reasons []string
	for r := range n {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var parts []string
	for _, r := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n[r], r))
	}
	out := "none"
	if len(parts) > 0 {
		out = strings.Join(parts, ", ")
	}
	if warnings > 0 {
		out += fmt.Sprintf("; %d warning(s)", warnings)
	}
	return out
}

// CoverageVerdict is the cover's one-line judgement of the coverage.
type CoverageVerdict struct {
	Verdict     string `json:"verdict"` // complete, incomplete
	Pairs       int    `json:"pairs"`
	GapDays     int    `json:"gap_days"` // account/region days missing or partial
	PartialDays int    `json:"partial_days"`
	Statement   string `json:"statement"`
	Rule        string `json:"partial_rule"`
}

// Verdict judges the gaps of a report's period over pairs account/region
// pairs.
func Verdict(gaps []Gap, pairs int) CoverageVerdict {
	v := CoverageVerdict{Verdict: "complete", Pairs: pairs, Rule: PartialRule}
	for _, g := range gaps {
		v.GapDays += g.Days
		if g.Kind == GapPartial {
			v.PartialDays += g.Days
		}
	}
	if v.GapDays == 0 {
		v.Statement = fmt.Sprintf("complete: every day of the period has KMS events for all %d account/region pair(s) in scope, none partial", pairs)
		return v
	}
	v.Verdict = "incomplete"
	v.Statement = fmt.Sprintf("incomplete: KMS evidence is missing or partial for %d account/region day(s) of the period (%d partial), in %d span(s); what happened then is unknown",
		v.GapDays, v.PartialDays, len(gaps))
	return v
}

// Conflict is a pair of records with one eventID that state different
// facts, in a report's scope: the event kept the record with the smaller
// fingerprint (Kept), the other (Other) is kept apart. A finding in every
// report.
type Conflict struct {
	EventID string         `json:"event_id"`
	Settled bool           `json:"settled"` // false: staged by an interrupted ingest, not compared yet
	Kept    ConflictRecord `json:"kept"`
	Other   ConflictRecord `json:"other"`
}

// ConflictRecord is one side of a conflict.
type ConflictRecord struct {
	Time       time.Time `json:"time"`
	Name       string    `json:"name"`
	Error      string    `json:"error,omitempty"`
	Principal  string    `json:"principal,omitempty"`
	KeyARN     string    `json:"key_arn,omitempty"`
	File       string    `json:"file"`
	FileSHA256 string    `json:"file_sha256"`
	Offset     int64     `json:"offset"` // -1: not a slice of the file, or not recorded
}

// Differs says in a few words how the two records differ.
func (c Conflict) Differs() string {
	var d []string
	k, o := c.Kept, c.Other
	if k.Name != o.Name {
		d = append(d, "event "+k.Name+" / "+o.Name)
	}
	if k.Error != o.Error {
		d = append(d, "error "+orDash(k.Error)+" / "+orDash(o.Error))
	}
	if !k.Time.Equal(o.Time) {
		d = append(d, "time "+FormatTime(k.Time)+" / "+FormatTime(o.Time))
	}
	if k.Principal != o.Principal {
		d = append(d, "principal "+orDash(k.Principal)+" / "+orDash(o.Principal))
	}
	if k.KeyARN != o.KeyARN {
		d = append(d, "key "+orDash(k.KeyARN)+" / "+orDash(o.KeyARN))
	}
	if len(d) == 0 {
		return "other fields (request, response, caller details)"
	}
	return strings.Join(d, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func conflictRecord(r store.ConflictRecord) ConflictRecord {
	return ConflictRecord{Time: r.Time, Name: r.Name, Error: r.ErrorCode, Principal: r.Principal, KeyARN: r.KeyARN,
		File: r.File, FileSHA256: hex.EncodeToString(r.FileSHA256), Offset: r.Offset}
}

// LoadConflicts lists the conflicting records in scope: either record in
// the period, in the account and region filters, naming the key filter.
// Each is a row of the report's digest (section "conflict", only when
// there is one).
func LoadConflicts(ctx context.Context, st *store.Store, sc Scope, dig *Digest) ([]Conflict, error) {
	all, err := st.Conflicts(ctx)
	if err != nil {
		return nil, err
	}
	in := func(r store.ConflictRecord) bool {
		return !r.Time.Before(sc.From) && r.Time.Before(sc.To) &&
			(sc.Account == "" || r.Account == sc.Account) && (sc.Region == "" || r.Region == sc.Region) &&
			(sc.KeyARN == "" || r.KeyARN == sc.KeyARN || strings.HasSuffix(r.KeyARN, "/"+sc.KeyARN))
	}
	out := []Conflict{}
	for _, c := range all {
		if !in(c.Kept) && !in(c.Other) {
			continue
		}
		if len(out) == 0 {
			dig.Section("conflict")
		}
		out = append(out, Conflict{EventID: c.EventID, Settled: c.Settled, Kept: conflictRecord(c.Kept), Other: conflictRecord(c.Other)})
		dig.Row(c.EventID, c.Settled, c.Kept.Name, c.Kept.ErrorCode, c.Other.Name, c.Other.ErrorCode, c.Other.File, c.Other.Offset)
	}
	return out, nil
}
