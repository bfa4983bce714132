// Package rotation builds the key rotation compliance report: for every
// KMS key in scope, what the evidence (CloudTrail events, inventory
// snapshots, ingest coverage) establishes about its identity, rotation,
// deletion and imported material at the end of the report period, judged
// by the rules package, with the events behind every finding.
//
//	r, err := rotation.Build(ctx, st, rotation.Options{Scope: sc, Policy: p, Progress: f})
//	r.WritePDF(w); r.WriteCSV(w); r.WriteJSON(w)
package rotation

import (
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/keyprov"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

// Report is the rotation report model; the PDF, CSV and JSON are all
// rendered from it.
type Report struct {
	Meta     report.Meta  `json:"meta"`
	Policy   rules.Policy `json:"policy"`
	Summary  Summary      `json:"summary"`
	Keys     []Key        `json:"keys"`
	Coverage []report.Gap `json:"coverage_gaps"`
	// Conflicts: eventIDs in scope with records that state different facts.
	Conflicts []report.Conflict `json:"conflicts"`
	Notes     []string          `json:"notes"`
	Evidence  []EvidenceItem    `json:"evidence"` // every event a finding rests on, by time
}

// Summary counts keys by overall status and by control.
type Summary struct {
	Keys     int                  `json:"keys"`
	ByStatus map[rules.Status]int `json:"by_status"`
	Controls []ControlSummary     `json:"controls"`
	Flags    map[string]int       `json:"flags"`
}

// ControlSummary is one control's counts.
type ControlSummary struct {
	Check  string               `json:"check"`
	Title  string               `json:"title"`
	Refs   []string             `json:"refs"`
	Counts map[rules.Status]int `json:"counts"`
}

// Key is everything the report states about one key.
type Key struct {
	ARN     string   `json:"arn"`
	KeyID   string   `json:"key_id"`
	Account string   `json:"account"`
	Region  string   `json:"region"`
	Aliases []string `json:"aliases"`

	Description string `json:"description"`
	Spec        string `json:"key_spec"`
	Origin      string `json:"origin"`
	Manager     string `json:"manager"`
	State       string `json:"state"` // at the end of the period, as far as known
	// Sources says where each identity fact came from ("inventory as of
	// ...", "CreateKey event ...", "alias alias/aws/...").
	Sources map[string]string `json:"sources"`

	Created       time.Time `json:"created,omitzero"`
	CreatedInLogs bool      `json:"created_in_logs"`
	InventoryAsOf time.Time `json:"inventory_as_of,omitzero"`

	RotationEnabled    string    `json:"rotation_enabled"` // yes, no, unknown
	RotationPeriodDays int       `json:"rotation_period_days,omitempty"`
	LastRotation       time.Time `json:"last_rotation,omitzero"`
	LastRotationType   string    `json:"last_rotation_type,omitempty"`
	Rotations          int       `json:"rotations"` // in the logs up to the end of the period
	// NextAutomaticRotation is when KMS will rotate next (enabled keys).
	NextAutomaticRotation time.Time `json:"next_automatic_rotation,omitzero"`
	// PolicyDue is when the policy requires the next rotation.
	PolicyDue   time.Time `json:"policy_due,omitzero"`
	DaysOverdue int       `json:"days_overdue"`
	// MaterialAgeDays is the age of the key material at the end of the
	// period: exact when MaterialAgeExact, else at most this (a rotation
	// hidden in a coverage gap could make it younger).
	MaterialAgeDays  *int `json:"material_age_days,omitempty"`
	MaterialAgeExact bool `json:"material_age_exact"`
	// MaterialAgeMinDays: the material is at least this old (complete logs
	// with no rotation for that long).
	MaterialAgeMinDays int `json:"material_age_min_days"`

	PendingDeletion string    `json:"pending_deletion"` // yes, no, unknown
	DeletionDate    time.Time `json:"deletion_date,omitzero"`

	ImportValidTo         time.Time `json:"import_valid_to,omitzero"`
	ImportExpirationModel string    `json:"import_expiration_model,omitempty"`
	MaterialIDs           []string  `json:"key_material_ids,omitempty"`
	Compensating          string    `json:"compensating_control,omitempty"`
	// ImportProvenance cites, for each import of key material, the
	// witnessed ceremony it was traced to (or why not): the key
	// provenance report's join.
	ImportProvenance []keyprov.ImportTrace `json:"import_provenance,omitempty"`

	Judgement rules.Judgement `json:"judgement"`
	Flags     []Flag          `json:"flags"`
	Gaps      []report.Gap    `json:"coverage_gaps"`
	// Evidence lists the events that established the facts above.
	Evidence []EvidenceRef `json:"evidence"`
	// EventCounts counts the lifecycle events of the key in the logs up to
	// the end of the period, by name (failed calls as "Name (failed)").
	EventCounts map[string]int `json:"event_counts"`
}

// Status is the key's overall status.
func (k *Key) Status() rules.Status { return k.Judgement.Status }

// Flag ids.
const (
	FlagRotationDisabled = "rotation-disabled"
	FlagRotationOverdue  = "rotation-overdue"
	FlagMaterialExpiring = "imported-material-expiring"
	FlagMaterialExpired  = "imported-material-expired"
	FlagKeyDisabled      = "key-disabled"
	FlagPendingDeletion  = "pending-deletion"
	FlagUseWhileUnusable = "use-while-disabled-or-pending-deletion"
	FlagCreatedBefore    = "created-before-logs"
	FlagCoverageGap      = "coverage-gap"
	FlagDeleted          = "deleted"
	// FlagConflict: an event of the key has two records that state
	// different facts (report.Conflict).
	FlagConflict = "conflicting-records"
	// FlagContradiction: a record shows KMS accepting a rotation setting
	// for a key automatic rotation does not apply to (an EXTERNAL key with
	// an EnableKeyRotation, say).
	FlagContradiction = "contradictory-evidence"
)

// Flag is a lifecycle observation about a key.
type Flag struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Count    int      `json:"count,omitempty"`
	Evidence []string `json:"evidence"` // CloudTrail event ids
}

// EvidenceRef is one event that established a fact.
type EvidenceRef struct {
	Role    string    `json:"role"` // what it established
	EventID string    `json:"event_id"`
	Time    time.Time `json:"time"`
	Name    string    `json:"name"`
}

// EvidenceItem is one event in the evidence appendix.
type EvidenceItem struct {
	EventID   string    `json:"event_id"`
	Time      time.Time `json:"time"`
	Name      string    `json:"name"`
	KeyARN    string    `json:"key_arn"`
	Principal string    `json:"principal"`
	Error     string    `json:"error,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Findings  []string  `json:"findings"` // "check:rule" or flag ids it supports
}
