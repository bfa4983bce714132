// Package provenance joins the evidence of key ceremonies to CloudTrail:
// every key material imported into AWS KMS and every CA certificate
// installed in AWS Private CA is matched to the witnessed ceremony that
// produced it, or reported as a finding. It is pure: the inputs are plain
// values (ceremonies as the store holds them, events as CloudTrail states
// them), so the rule is tested on its edge cases without a database.
//
// The rule is stated for people in docs/audit-reports.md ("Key
// provenance"); Match implements it and the two must say the same.
package provenance

import (
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// KMSEvent is one KMS lifecycle record the join reads.
type KMSEvent struct {
	EventID   string
	Time      time.Time // eventTime: AWS's clock
	Name      string
	KeyARN    string
	Principal string
	ErrorCode string // "" for a successful call
	// GetParametersForImport: the request's wrapping algorithm and key
	// spec. CloudTrail records no response (responseElements is null): the
	// parameters' expiry is not in the logs; AWS issues them valid for 24
	// hours from the call.
	WrappingAlgorithm, WrappingKeySpec string
	// ImportKeyMaterial: the request's validTo, expirationModel and
	// importType, and the response's keyMaterialId where CloudTrail has it.
	ValidTo                     time.Time
	ExpirationModel, ImportType string
	KeyMaterialID               string
	// CreateKey: the key's origin and spec.
	Origin, KeySpec string
}

// OK reports a successful call.
func (e *KMSEvent) OK() bool { return e.ErrorCode == "" }

// Options tune the rule.
type Options struct {
	// Skew is how far the ceremony laptop's clock may be from AWS's: the
	// time-order checks between a ceremony's times and CloudTrail's allow
	// this much either way. Default 15 minutes.
	Skew time.Duration
	// ParametersTolerance is how far a ceremony's ParametersValidTo may be
	// from 24 hours after a GetParametersForImport call for the call to be
	// the one that issued them (both are AWS's clock). Default 2 minutes.
	ParametersTolerance time.Duration
	// AsOf is the end of the report period: parameters valid after it are
	// still pending, material valid until before it has expired.
	AsOf time.Time
	// ExpiryWarn flags imported material expiring within this long after
	// AsOf. Default 30 days.
	ExpiryWarn time.Duration
	// Covered reports whether the CloudTrail logs of the key's account and
	// region are complete over [from, to): an import missing from a span
	// that is not covered may simply not be ingested. Nil: unknown.
	Covered func(keyARN string, from, to time.Time) bool
}

// ParametersLifetime is how long AWS KMS import parameters stay valid.
const ParametersLifetime = 24 * time.Hour

func (o Options) withDefaults() Options {
	if o.Skew == 0 {
		o.Skew = 15 * time.Minute
	}
	if o.ParametersTolerance == 0 {
		o.ParametersTolerance = 2 * time.Minute
	}
	if o.ExpiryWarn == 0 {
		o.ExpiryWarn = 30 * 24 * time.Hour
	}
	return o
}

// Status of an import (or CA certificate installation).
type Status string

const (
	Matched   Status = "matched"   // one witnessed ceremony produced it
	Ambiguous Status = "ambiguous" // two or more ceremonies fit equally (parameters reused)
	Mismatch  Status = "mismatch"  // a ceremony fits in time but differs in what it wrapped
	Rehearsal Status = "rehearsal" // only a rehearsal transcript fits
	Unmatched Status = "unmatched" // no ceremony record
)

// Finding ids.
const (
	FindingNoCeremony      = "import-without-ceremony"
	FindingAmbiguous       = "import-matches-several-ceremonies"
	FindingDiffers         = "import-differs-from-ceremony"
	FindingRehearsal       = "rehearsal-offered-as-evidence"
	FindingNotImported     = "ceremony-without-import"
	FindingExpiring        = "imported-material-expiring"
	FindingExpired         = "imported-material-expired"
	FindingDeleted         = "imported-material-deleted"
	FindingCANoCeremony    = "ca-certificate-without-ceremony"
	FindingCADiffers       = "ca-certificate-differs-from-ceremony"
	FindingCANotImported   = "ca-ceremony-without-import"
	FindingParamsNotInLogs = "parameters-request-not-in-logs"
	FindingImportNotInLogs = "recorded-import-not-in-logs"
)

// Severity of a finding.
type Severity string

const (
	High   Severity = "high"
	Medium Severity = "medium"
	Info   Severity = "info"
)

// Finding is one observation with its evidence.
type Finding struct {
	ID       string    `json:"id"`
	Severity Severity  `json:"severity"`
	Resource string    `json:"resource"` // key ARN or CA ARN
	Time     time.Time `json:"time"`
	Text     string    `json:"text"`
	// EventIDs are the CloudTrail records it rests on; FinalHashes the
	// transcripts (their final hash).
	EventIDs    []string `json:"event_ids"`
	FinalHashes []string `json:"final_hashes"`
}

// keyID is what identifies a KMS key across the forms CloudTrail and a
// ceremony name it: the key id after "key/" (an ARN), or the id itself.
func keyID(arn string) string {
	if i := strings.LastIndex(arn, "key/"); i >= 0 {
		return arn[i+4:]
	}
	return arn
}

// SameKey reports whether two key names (ARN or key id) are the same key:
// two ARNs must be equal, an ARN and a bare id share the id.
func SameKey(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if strings.HasPrefix(a, "arn:") && strings.HasPrefix(b, "arn:") {
		return a == b
	}
	return keyID(a) == keyID(b)
}

func isBYOK(c *store.Ceremony) bool { return c.Kind == "byok-wrap" && c.Facts.BYOK != nil }
