// Package keyprov builds the key provenance report: for every KMS key with
// imported material (origin EXTERNAL) and every AWS Private CA in scope,
// its timeline — created, each witnessed ceremony (date, participants,
// final hash as hex and words), the import parameters, each import, the
// rotations, the deletion of material, the usage — and the findings of
// the join (package provenance) with their evidence.
//
//	r, err := keyprov.Build(ctx, st, keyprov.Options{Scope: sc})
//	r.WritePDF(w); r.WriteCSV(w); r.WriteJSON(w)
package keyprov

import (
	"time"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
)

// Report is the key provenance model; the PDF, CSV and JSON are rendered
// from it.
type Report struct {
	Meta report.Meta `json:"meta"`
	// Rule states the tolerances the join applied.
	Rule       Rule                 `json:"rule"`
	Summary    Summary              `json:"summary"`
	Keys       []Section            `json:"keys"`
	CAs        []Section            `json:"certificate_authorities"`
	Ceremonies []Ceremony           `json:"ceremonies"`
	Findings   []provenance.Finding `json:"findings"`
	Coverage   []report.Gap         `json:"coverage_gaps"`
	Conflicts  []report.Conflict    `json:"conflicts"`
	Notes      []string             `json:"notes"`
}

// Rule is the join's tolerances.
type Rule struct {
	ClockSkewMinutes         int `json:"clock_skew_minutes"`
	ParametersToleranceSecs  int `json:"parameters_tolerance_seconds"`
	ExpiryWarnDays           int `json:"expiry_warn_days"`
	ParametersLifetimeHours  int `json:"parameters_lifetime_hours"`
	RehearsalsLoaded         int `json:"rehearsals_loaded"`
	TranscriptsRefusedInRuns int `json:"transcripts_refused"`
}

// Summary counts what the join found.
type Summary struct {
	Keys        int                         `json:"external_keys"`
	CAs         int                         `json:"certificate_authorities"`
	Ceremonies  int                         `json:"ceremonies"`
	Imports     map[provenance.Status]int   `json:"imports"`
	CAImports   map[provenance.Status]int   `json:"ca_certificate_imports"`
	BySeverity  map[provenance.Severity]int `json:"findings_by_severity"`
	FindingsIDs map[string]int              `json:"findings"`
}

// Section is one KMS key or one Private CA.
type Section struct {
	ARN         string `json:"arn"`
	Account     string `json:"account"`
	Region      string `json:"region"`
	Spec        string `json:"key_spec,omitempty"`
	Origin      string `json:"origin,omitempty"`
	Description string `json:"description,omitempty"`
	// Verdict is one line: every import traced, or what is not.
	Verdict  string         `json:"verdict"`
	Timeline []TimelineItem `json:"timeline"`
	// UsageCalls counts the key's cryptographic calls in the period
	// (failed ones included), UsageFailed the failed ones.
	UsageCalls  int64                `json:"usage_calls"`
	UsageFailed int64                `json:"usage_failed"`
	Findings    []provenance.Finding `json:"findings"`
	Gaps        []report.Gap         `json:"coverage_gaps"`
}

// TimelineItem is one event or ceremony on a key's timeline.
type TimelineItem struct {
	Time time.Time `json:"time"`
	// Kind is "event" (CloudTrail) or "ceremony".
	Kind      string `json:"kind"`
	What      string `json:"what"`
	EventID   string `json:"event_id,omitempty"`
	Principal string `json:"principal,omitempty"`
	Error     string `json:"error,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// Status: for an import, the join's status; for a ceremony, what the
	// logs show of its output.
	Status    string `json:"status,omitempty"`
	FinalHash string `json:"final_hash,omitempty"`
}

// Ceremony is one stored ceremony as the report states it.
type Ceremony struct {
	FinalHash      string    `json:"final_hash"`
	FinalWords     string    `json:"final_hash_words"`
	CeremonyID     string    `json:"ceremony_id"`
	Kind           string    `json:"kind"`
	Title          string    `json:"title,omitempty"`
	Started        time.Time `json:"started"`
	Ended          time.Time `json:"ended"`
	Rehearsal      bool      `json:"rehearsal"`
	Participants   []string  `json:"participants"` // "Name (role)"
	Resource       string    `json:"resource,omitempty"`
	ScriptSHA256   string    `json:"script_sha256,omitempty"`
	BinarySHA256   string    `json:"binary_sha256,omitempty"`
	BinaryVersion  string    `json:"binary_version,omitempty"`
	Anchors        string    `json:"anchors"`
	Transcript     string    `json:"transcript"`
	TranscriptHash string    `json:"transcript_sha256"`
	// Produced is what the ceremony made, as label/value pairs in the
	// order people read them.
	Produced [][2]string `json:"produced"`
	State    string      `json:"state"` // what the logs show of its output
}
