// Package usage builds the key usage report: who used which KMS key for
// what during a period, from the CloudTrail events in the audit database.
// Per key and overall: operations by name, principals (assumed-role
// sessions folded into their role), invoking AWS services, caller
// accounts (cross-account use flagged), failures by error code, principals
// new in the period, activity outside business hours, a daily series, the
// administrative events auditors alarm on, keys with no use, and the
// inventory's last-use dates checked against CloudTrail.
//
//	r, err := usage.Build(ctx, st, usage.Options{Scope: sc, Progress: f})
//	r.WritePDF(w); r.WriteCSV(w); r.WriteJSON(w)
package usage

import (
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
)

// Report is the usage report model; the PDF, CSV and JSON are rendered
// from it.
type Report struct {
	Meta          report.Meta    `json:"meta"`
	BusinessHours BusinessHours  `json:"business_hours"`
	TopN          int            `json:"top_n"`
	Totals        Totals         `json:"totals"`
	Days          []string       `json:"days"` // the UTC days of the period, the index of every series
	Daily         []DayCount     `json:"daily"`
	Keys          []Key          `json:"keys"` // keys with events in the period, most used first
	NoKey         Usage          `json:"no_key"`
	Principals    []Principal    `json:"principals"` // every identity seen in the period, most active first
	Unused        []UnusedKey    `json:"unused_keys"`
	Admin         []AdminEvent   `json:"admin_events"`
	LastUse       []LastUseCheck `json:"last_use_checks"`
	Coverage      []report.Gap   `json:"coverage_gaps"`
	// Conflicts: eventIDs in scope with records that state different facts.
	Conflicts []report.Conflict `json:"conflicts"`
	Evidence  []Evidence        `json:"evidence"`
	Notes     []string          `json:"notes"`
}

// BusinessHours define "outside business hours".
type BusinessHours struct {
	Zone      string `json:"zone"`       // IANA time zone
	StartHour int    `json:"start_hour"` // first business hour, 0-23
	EndHour   int    `json:"end_hour"`   // business hours end at this hour (exclusive)
	Weekdays  string `json:"weekdays"`   // e.g. "Mon-Fri"
}

// Totals are the period's headline figures.
type Totals struct {
	Events        int64 `json:"events"`         // every KMS event in scope
	CryptoCalls   int64 `json:"crypto_calls"`   // cryptographic (data-plane) calls
	Failed        int64 `json:"failed"`         // calls with an error code
	OffHours      int64 `json:"off_hours"`      // cryptographic calls outside business hours
	CrossAccount  int64 `json:"cross_account"`  // calls by a principal of another account
	KeysUsed      int   `json:"keys_used"`      // keys with a successful cryptographic call
	KeysInScope   int   `json:"keys_in_scope"`  // keys known to exist in the period
	Principals    int   `json:"principals"`     // identities seen
	NewPrincipals int   `json:"new_principals"` // identities first seen in the period
	AdminEvents   int   `json:"admin_events"`
	// AggregatedEvents of Events are counted from aggregates (no event
	// id, no time of day: not in OffHours).
	AggregatedEvents int64 `json:"aggregated_events"`
}

// DayCount is one day of a series.
type DayCount struct {
	Day    string `json:"day"`
	Calls  int64  `json:"calls"`  // cryptographic calls
	Failed int64  `json:"failed"` // of which failed
}

// Count is a value with its number of events and failures.
type Count struct {
	Name   string `json:"name"`
	Calls  int64  `json:"calls"`
	Failed int64  `json:"failed"`
}

// Usage is the breakdown of a set of events (one key's, or those naming no key).
type Usage struct {
	Events      int64 `json:"events"`
	CryptoCalls int64 `json:"crypto_calls"`
	Failed      int64 `json:"failed"`
	OffHours    int64 `json:"off_hours"`
	// Aggregated of Events are counted from aggregates (no event id, no
	// time of day).
	Aggregated int64      `json:"aggregated_events,omitempty"`
	Operations []Count    `json:"operations"` // by event name; ReEncrypt as ReEncryptFrom / ReEncryptTo
	Principals []Count    `json:"principals"` // by identity
	Services   []Count    `json:"services"`   // by invoking AWS service (userIdentity.invokedBy)
	Accounts   []Count    `json:"accounts"`   // by caller account
	Errors     []Count    `json:"errors"`     // by error code
	Daily      []DayCount `json:"daily"`
}

// Key is one key's usage.
type Key struct {
	ARN     string   `json:"arn"`
	Account string   `json:"account"`
	Region  string   `json:"region"`
	Aliases []string `json:"aliases"`
	Usage
	FirstUse time.Time `json:"first_use,omitzero"` // first successful cryptographic call in the period
	LastUse  time.Time `json:"last_use,omitzero"`  // last successful cryptographic call in the period
	// CrossAccount lists the caller accounts other than the key's own.
	CrossAccount  []Count      `json:"cross_account"`
	NewPrincipals []string     `json:"new_principals"` // of this key's principals, those new in the period
	Gaps          []report.Gap `json:"coverage_gaps"`
}

// Principal is one identity: an IAM user or role (sessions folded), a
// federated user, or an AWS service.
type Principal struct {
	Identity     string    `json:"identity"`
	Type         string    `json:"type"`
	Account      string    `json:"account"`
	Calls        int64     `json:"calls"`
	Failed       int64     `json:"failed"`
	OffHours     int64     `json:"off_hours"`
	Keys         int       `json:"keys"`
	FirstSeen    time.Time `json:"first_seen"` // in the whole database
	New          bool      `json:"new"`        // first seen inside the period
	FirstEventID string    `json:"first_event_id,omitempty"`
}

// UnusedKey is a key with no successful cryptographic call in the period.
type UnusedKey struct {
	ARN     string       `json:"arn"`
	Aliases []string     `json:"aliases"`
	Account string       `json:"account"`
	Region  string       `json:"region"`
	Events  int64        `json:"events"` // other events naming it in the period
	LastUse time.Time    `json:"last_use_before,omitzero"`
	Gaps    []report.Gap `json:"coverage_gaps"` // evidence missing for these days: "unused" is then not established
	Caveat  string       `json:"caveat,omitempty"`
}

// AdminEvent is an administrative call auditors alarm on.
type AdminEvent struct {
	EventID   string    `json:"event_id"`
	Time      time.Time `json:"time"`
	Name      string    `json:"name"`
	KeyARN    string    `json:"key_arn"`
	Principal string    `json:"principal"`
	Error     string    `json:"error,omitempty"`
	// Count and FromAggregates: a group of Count events counted by
	// aggregates, with no event id; Time is the first of them.
	Count          int64 `json:"count,omitempty"`
	FromAggregates bool  `json:"from_aggregates,omitempty"`
}

// LastUseCheck compares the inventory's GetKeyLastUsage result with the
// last cryptographic use CloudTrail shows up to the inventory's time.
type LastUseCheck struct {
	KeyARN           string    `json:"key_arn"`
	InventoryAsOf    time.Time `json:"inventory_as_of"`
	InventoryLastUse time.Time `json:"inventory_last_use,omitzero"`
	InventoryOp      string    `json:"inventory_operation,omitempty"`
	CloudTrailLast   time.Time `json:"cloudtrail_last_use,omitzero"`
	CloudTrailOp     string    `json:"cloudtrail_operation,omitempty"`
	CloudTrailEvent  string    `json:"cloudtrail_event_id,omitempty"`
	Agree            bool      `json:"agree"`
	Note             string    `json:"note"`
}

// Evidence is one event a finding rests on.
type Evidence struct {
	EventID   string    `json:"event_id"`
	Time      time.Time `json:"time"`
	Name      string    `json:"name"`
	KeyARN    string    `json:"key_arn"`
	Principal string    `json:"principal"`
	Finding   string    `json:"finding"`
}
