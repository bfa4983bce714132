// Package rules decides, from the facts established about one KMS key,
// whether automatic rotation applies to it, the status of every control
// the rotation report checks, and which published controls each check
// stands for. It is the one place these rules live: the report packages
// gather facts, this package judges them, and docs/audit-reports.md
// prints the same tables.
//
// The rules never guess. A fact that no evidence establishes is Unknown,
// and a check that depends on it is "unknown", not a pass or a failure.
package rules

import (
	"fmt"
	"strings"
	"time"
)

// Tri is a fact that may be unknown.
type Tri int8

const (
	Unknown Tri = iota
	Yes
	No
)

func (t Tri) String() string {
	switch t {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// TriOf turns a known boolean into a Tri.
func TriOf(b bool) Tri {
	if b {
		return Yes
	}
	return No
}

// Status of a check or of a key.
type Status string

const (
	Compliant     Status = "compliant"
	NonCompliant  Status = "non-compliant"
	StatusUnknown Status = "unknown"
	// NotEligible: automatic rotation does not apply to the key (asymmetric,
	// HMAC, imported material, custom key store). Never a pass, never a
	// failure; the report shows the compensating control's evidence.
	NotEligible Status = "not-eligible"
	// NotApplicable: the check does not concern the key (an AWS managed
	// key cannot be scheduled for deletion by its owner; a deleted key).
	NotApplicable Status = "not-applicable"
)

// Policy is the organisation's rotation policy.
type Policy struct {
	// RotationDays: key material must be no older than this (default 365).
	RotationDays int
	// ImportMaxDays: imported key material must be set to expire within
	// this many days of its import; 0 does not check.
	ImportMaxDays int
	// ExpiryWarnDays: flag imported material expiring within this many
	// days after the end of the period (default 30).
	ExpiryWarnDays int
}

// WithDefaults fills zero fields.
func (p Policy) WithDefaults() Policy {
	if p.RotationDays <= 0 {
		p.RotationDays = 365
	}
	if p.ExpiryWarnDays <= 0 {
		p.ExpiryWarnDays = 30
	}
	return p
}

// Facts are what the evidence establishes about one key at the end of the
// report period. Empty strings, zero times and Unknown mean "no evidence".
type Facts struct {
	Manager        string // AWS or CUSTOMER
	Spec           string // SYMMETRIC_DEFAULT, RSA_2048, HMAC_256, ECC_NIST_P256, ...
	Origin         string // AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE
	CustomKeyStore string // custom key store id, if any
	// RotationAccepted: KMS accepted EnableKeyRotation or
	// DisableKeyRotation for the key, or rotated it automatically, which
	// it does only for keys eligible for automatic rotation.
	RotationAccepted bool

	Deleted bool // DeleteKey seen (or inventory state)

	RotationEnabled Tri
	RotationPeriod  int // days; 0 unknown
	// The age of the key material at the end of the period, in days, as
	// bounds: MaterialAgeMax holds when MaterialAgeMaxKnown (the last
	// creation or rotation seen; a rotation hidden in a coverage gap could
	// only make the material younger), and the material is at least
	// MaterialAgeMin days old (complete logs with no rotation for that
	// long). When the last rotation is seen and the logs since are
	// complete, both are the exact age.
	MaterialAgeMax      int
	MaterialAgeMaxKnown bool
	MaterialAgeMin      int

	PendingDeletion Tri
	DeletionDate    time.Time

	// RotationUnknownSince and DeletionUnknownSince: the setting was
	// established, but KMS evidence is missing (or partial) from this day
	// on, where a change could hide: it is unknown since then.
	RotationUnknownSince, DeletionUnknownSince time.Time

	// Imported material (origin EXTERNAL). ImportModelKnown: the current
	// material's expiration model is established (ImportExpires);
	// ImportValidKnown: also how long it was valid from its import
	// (ImportValidDays), which only the import's record states.
	ImportExpires      Tri // the current material was imported with an expiration
	ImportValidDays    int // validTo minus import time, in days
	ImportModelKnown   bool
	ImportValidKnown   bool
	ImportUnknownSince time.Time // a later import may hide in a gap from this day
	CompensatingKnown  bool      // on-demand rotation after a NEW_KEY_MATERIAL import evidenced
	CompensatingAge    int       // days since that rotation
}

// Eligibility is whether automatic rotation applies.
type Eligibility string

const (
	Eligible        Eligibility = "eligible"
	AWSManaged      Eligibility = "aws-managed"
	NotEligibleKey  Eligibility = "not-eligible"
	EligibleUnknown Eligibility = "unknown"
)

// EligibilityRule is one row of the eligibility table; the first row
// whose When holds decides.
type EligibilityRule struct {
	ID     string
	When   string // the condition, for the documentation
	Result Eligibility
	Reason string
	match  func(f Facts) bool
}

// EligibilityRules is the eligibility table, in order. What the key is
// (manager, origin, key store, spec) decides before what was done to it:
// a record of an accepted EnableKeyRotation on a key with imported
// material contradicts what KMS allows, and the key's origin wins (the
// rotation report flags the contradiction).
var EligibilityRules = []EligibilityRule{
	{"E1", "manager is AWS", AWSManaged,
		"AWS managed key: AWS rotates its key material every year",
		func(f Facts) bool { return f.Manager == "AWS" }},
	{"E2", "origin is EXTERNAL", NotEligibleKey,
		"imported key material (origin EXTERNAL): automatic rotation does not apply; rotate on demand after importing new key material",
		func(f Facts) bool { return f.Origin == "EXTERNAL" }},
	{"E3", "origin is AWS_CLOUDHSM or EXTERNAL_KEY_STORE, or a custom key store is set", NotEligibleKey,
		"key in a custom key store: automatic rotation does not apply",
		func(f Facts) bool {
			return f.Origin == "AWS_CLOUDHSM" || f.Origin == "EXTERNAL_KEY_STORE" || f.CustomKeyStore != ""
		}},
	{"E4", "key spec is HMAC_*", NotEligibleKey,
		"HMAC key: automatic rotation does not apply",
		func(f Facts) bool { return strings.HasPrefix(f.Spec, "HMAC_") }},
	{"E5", "key spec is known and not SYMMETRIC_DEFAULT", NotEligibleKey,
		"asymmetric key: automatic rotation does not apply",
		func(f Facts) bool { return f.Spec != "" && f.Spec != "SYMMETRIC_DEFAULT" }},
	{"E6", "KMS accepted EnableKeyRotation or DisableKeyRotation for the key, or rotated it automatically", Eligible,
		"KMS accepted EnableKeyRotation or DisableKeyRotation, or rotated the key automatically, which it does only for keys eligible for automatic rotation",
		func(f Facts) bool { return f.RotationAccepted }},
	{"E7", "manager CUSTOMER, spec SYMMETRIC_DEFAULT, origin AWS_KMS", Eligible,
		"customer managed symmetric encryption key with KMS key material",
		func(f Facts) bool {
			return f.Manager == "CUSTOMER" && f.Spec == "SYMMETRIC_DEFAULT" && f.Origin == "AWS_KMS"
		}},
	{"E8", "otherwise", EligibleUnknown,
		"key spec, origin or manager not established: no CreateKey in the logs and no inventory",
		func(Facts) bool { return true }},
}

// Contradicts reports whether the key's facts contradict what KMS allows:
// a rotation setting accepted for a key automatic rotation does not apply
// to.
func Contradicts(f Facts) bool {
	e, _ := eligibility(f)
	return f.RotationAccepted && e == NotEligibleKey
}

// Classify applies the eligibility table.
func Classify(f Facts) (Eligibility, EligibilityRule) { return eligibility(f) }

func eligibility(f Facts) (Eligibility, EligibilityRule) {
	for _, r := range EligibilityRules {
		if r.match(f) {
			return r.Result, r
		}
	}
	panic("unreachable: E8 matches everything")
}

// Check IDs.
const (
	CheckRotationEnabled = "rotation-enabled"
	CheckRotationPeriod  = "rotation-period"
	CheckNotDeleting     = "not-pending-deletion"
	CheckImportExpiry    = "imported-material-expiry"
)

// Control is a check and the published controls it stands for.
type Control struct {
	Check string
	Title string
	Refs  []string
}

// Controls maps each check to the controls auditors cite.
var Controls = []Control{
	{CheckRotationEnabled, "Automatic rotation is enabled on customer managed symmetric encryption keys", []string{
		"AWS Config cmk-backing-key-rotation-enabled",
		"AWS Security Hub KMS.4",
		"CIS AWS Foundations Benchmark v1.5.0 and v2.0.0: 3.8",
		"CIS AWS Foundations Benchmark v3.0.0 and v5.0.0: 3.6",
		"CIS AWS Foundations Benchmark v6.0.0: 4.6",
	}},
	{CheckRotationPeriod, "Key material is rotated within the policy period", []string{"Organisation key management policy (rotation period)"}},
	{CheckNotDeleting, "Customer managed keys are not scheduled for deletion", []string{
		"AWS Config kms-cmk-not-scheduled-for-deletion",
		"AWS Security Hub KMS.3",
	}},
	{CheckImportExpiry, "Imported key material is set to expire within the policy period", []string{"Organisation key management policy (imported material)"}},
}

// ControlFor returns the control of a check.
func ControlFor(check string) Control {
	for _, c := range Controls {
		if c.Check == check {
			return c
		}
	}
	return Control{Check: check}
}

// Result is the outcome of one check.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// CheckRule is one row of a check's decision table.
type CheckRule struct {
	Check  string
	ID     string
	When   string
	Status Status
	// reason builds the sentence shown in the report from the facts.
	reason func(f Facts, p Policy) string
	match  func(f Facts, p Policy, e Eligibility) bool
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func fixed(s string) func(Facts, Policy) string { return func(Facts, Policy) string { return s } }

// CheckRules are the decision tables of the checks, each in order; the
// first row whose When holds decides. Eligibility is decided first.
var CheckRules = []CheckRule{
	// Automatic rotation enabled.
	{CheckRotationEnabled, "R0", "key deleted", NotApplicable, fixed("key deleted"),
		func(f Facts, _ Policy, _ Eligibility) bool { return f.Deleted }},
	{CheckRotationEnabled, "R1", "AWS managed key", NotApplicable, fixed("AWS managed: AWS rotates it every year; the controls concern customer managed keys"),
		func(_ Facts, _ Policy, e Eligibility) bool { return e == AWSManaged }},
	{CheckRotationEnabled, "R2", "not eligible for automatic rotation", NotEligible, fixed("automatic rotation does not apply to this key"),
		func(_ Facts, _ Policy, e Eligibility) bool { return e == NotEligibleKey }},
	{CheckRotationEnabled, "R3", "rotation enabled", Compliant, fixed("automatic rotation enabled"),
		func(f Facts, _ Policy, e Eligibility) bool { return f.RotationEnabled == Yes && e != NotEligibleKey }},
	{CheckRotationEnabled, "R4", "eligible and rotation disabled", NonCompliant, fixed("automatic rotation disabled on a customer managed symmetric key"),
		func(f Facts, _ Policy, e Eligibility) bool { return f.RotationEnabled == No && e == Eligible }},
	{CheckRotationEnabled, "R5", "otherwise", StatusUnknown, func(f Facts, _ Policy) string {
		if f.RotationEnabled == No {
			return "automatic rotation disabled, but the key's eligibility is not established"
		}
		if !f.RotationUnknownSince.IsZero() {
			return "rotation setting unknown since " + day(f.RotationUnknownSince) + ": KMS evidence is missing or partial from that day, and a change of the setting could hide there"
		}
		return "rotation status not established by the evidence (no EnableKeyRotation/DisableKeyRotation, creation or inventory covering the period)"
	}, func(Facts, Policy, Eligibility) bool { return true }},

	// Material age within the policy period.
	{CheckRotationPeriod, "P0", "key deleted", NotApplicable, fixed("key deleted"),
		func(f Facts, _ Policy, _ Eligibility) bool { return f.Deleted }},
	{CheckRotationPeriod, "P1", "AWS managed key", NotApplicable, fixed("AWS managed: rotated by AWS every year"),
		func(_ Facts, _ Policy, e Eligibility) bool { return e == AWSManaged }},
	{CheckRotationPeriod, "P2", "not eligible for automatic rotation", NotEligible, func(f Facts, p Policy) string {
		if f.Origin == "EXTERNAL" && f.CompensatingKnown {
			if f.CompensatingAge <= p.RotationDays {
				return fmt.Sprintf("compensating control evidenced: new key material imported and rotated on demand %d day(s) before the end of the period", f.CompensatingAge)
			}
			return fmt.Sprintf("compensating control last evidenced %d day(s) before the end of the period, longer than the policy's %d days", f.CompensatingAge, p.RotationDays)
		}
		if f.Origin == "EXTERNAL" {
			return "no compensating control evidenced: no NEW_KEY_MATERIAL import followed by RotateKeyOnDemand in the logs"
		}
		return "compensating control (replacing the key) is not evidenced by KMS logs"
	}, func(_ Facts, _ Policy, e Eligibility) bool { return e == NotEligibleKey }},
	{CheckRotationPeriod, "P3", "eligible, rotation enabled with a period longer than the policy", NonCompliant, func(f Facts, p Policy) string {
		return fmt.Sprintf("rotation period %d days is longer than the policy's %d days", f.RotationPeriod, p.RotationDays)
	}, func(f Facts, p Policy, e Eligibility) bool {
		return f.RotationEnabled == Yes && f.RotationPeriod > p.RotationDays && e == Eligible
	}},
	{CheckRotationPeriod, "P4", "eligible and material older than the policy period", NonCompliant, func(f Facts, p Policy) string {
		if f.MaterialAgeMaxKnown && f.MaterialAgeMax == f.MaterialAgeMin {
			return fmt.Sprintf("key material %d days old: rotation overdue by %d day(s) (policy %d days)", f.MaterialAgeMin, f.MaterialAgeMin-p.RotationDays, p.RotationDays)
		}
		return fmt.Sprintf("no rotation in %d days of complete logs: rotation overdue by at least %d day(s) (policy %d days)", f.MaterialAgeMin, f.MaterialAgeMin-p.RotationDays, p.RotationDays)
	}, func(f Facts, p Policy, e Eligibility) bool {
		return e == Eligible && f.MaterialAgeMin > p.RotationDays
	}},
	{CheckRotationPeriod, "P5", "eligible and material younger than the policy period", Compliant, func(f Facts, p Policy) string {
		return fmt.Sprintf("key material at most %d day(s) old at the end of the period (policy %d days)", f.MaterialAgeMax, p.RotationDays)
	}, func(f Facts, p Policy, e Eligibility) bool {
		return e == Eligible && f.MaterialAgeMaxKnown && f.MaterialAgeMax <= p.RotationDays
	}},
	{CheckRotationPeriod, "P6", "otherwise", StatusUnknown, func(f Facts, p Policy) string {
		switch {
		case f.MaterialAgeMaxKnown && f.MaterialAgeMax > p.RotationDays:
			return fmt.Sprintf("last rotation seen %d days before the end of the period, but a coverage gap since could hide a later one", f.MaterialAgeMax)
		case f.MaterialAgeMin > p.RotationDays:
			return fmt.Sprintf("key material at least %d days old, but the key's eligibility is not established", f.MaterialAgeMin)
		case f.MaterialAgeMaxKnown:
			return fmt.Sprintf("key material at most %d days old, but the key's eligibility is not established", f.MaterialAgeMax)
		}
		return "age of the key material not established: no creation or rotation in the logs, and the logs do not cover the policy period"
	}, func(Facts, Policy, Eligibility) bool { return true }},

	// Not scheduled for deletion.
	{CheckNotDeleting, "D0", "key deleted", NotApplicable, fixed("key deleted"),
		func(f Facts, _ Policy, _ Eligibility) bool { return f.Deleted }},
	{CheckNotDeleting, "D1", "AWS managed key", NotApplicable, fixed("AWS managed keys cannot be scheduled for deletion by their owner"),
		func(_ Facts, _ Policy, e Eligibility) bool { return e == AWSManaged }},
	{CheckNotDeleting, "D2", "deletion pending", NonCompliant, func(f Facts, _ Policy) string {
		if !f.DeletionDate.IsZero() {
			return "scheduled for deletion on " + f.DeletionDate.UTC().Format("2006-01-02")
		}
		return "scheduled for deletion"
	}, func(f Facts, _ Policy, _ Eligibility) bool { return f.PendingDeletion == Yes }},
	{CheckNotDeleting, "D3", "deletion not pending", Compliant, fixed("not scheduled for deletion"),
		func(f Facts, _ Policy, _ Eligibility) bool { return f.PendingDeletion == No }},
	{CheckNotDeleting, "D4", "otherwise", StatusUnknown, func(f Facts, _ Policy) string {
		if !f.DeletionUnknownSince.IsZero() {
			return "deletion status unknown since " + day(f.DeletionUnknownSince) + ": KMS evidence is missing or partial from that day, and a scheduling or cancellation of the deletion could hide there"
		}
		return "deletion status not established (no ScheduleKeyDeletion/CancelKeyDeletion, creation or inventory covering the period)"
	},
		func(Facts, Policy, Eligibility) bool { return true }},

	// Imported material expiry (origin EXTERNAL; only when the policy sets it).
	{CheckImportExpiry, "I0", "not imported material, key deleted, or no import policy", NotApplicable, fixed("not applicable"),
		func(f Facts, p Policy, _ Eligibility) bool {
			return f.Origin != "EXTERNAL" || f.Deleted || p.ImportMaxDays <= 0
		}},
	{CheckImportExpiry, "I1", "material does not expire", NonCompliant, func(_ Facts, p Policy) string {
		return fmt.Sprintf("imported key material set not to expire (policy: expire within %d days)", p.ImportMaxDays)
	}, func(f Facts, _ Policy, _ Eligibility) bool { return f.ImportModelKnown && f.ImportExpires == No }},
	{CheckImportExpiry, "I2", "material valid longer than the policy", NonCompliant, func(f Facts, p Policy) string {
		return fmt.Sprintf("imported key material valid for %d days (policy: at most %d)", f.ImportValidDays, p.ImportMaxDays)
	}, func(f Facts, p Policy, _ Eligibility) bool {
		return f.ImportValidKnown && f.ImportExpires == Yes && f.ImportValidDays > p.ImportMaxDays
	}},
	{CheckImportExpiry, "I3", "material expires within the policy", Compliant, func(f Facts, p Policy) string {
		return fmt.Sprintf("imported key material valid for %d days (policy: at most %d)", f.ImportValidDays, p.ImportMaxDays)
	}, func(f Facts, _ Policy, _ Eligibility) bool { return f.ImportValidKnown && f.ImportExpires == Yes }},
	{CheckImportExpiry, "I4", "otherwise", StatusUnknown, func(f Facts, _ Policy) string {
		if !f.ImportUnknownSince.IsZero() {
			return "the current import of key material unknown since " + day(f.ImportUnknownSince) + ": KMS evidence is missing or partial from that day, and a later import could hide there"
		}
		return "the current import of key material is not in the logs"
	}, func(Facts, Policy, Eligibility) bool { return true }},
}

// CheckOrder is the order checks are reported in.
var CheckOrder = []string{CheckRotationEnabled, CheckRotationPeriod, CheckNotDeleting, CheckImportExpiry}

// Judgement is everything the rules decide for one key.
type Judgement struct {
	Eligibility Eligibility `json:"eligibility"`
	EligRule    string      `json:"eligibility_rule"`
	EligReason  string      `json:"eligibility_reason"`
	Checks      []Result    `json:"checks"`
	Status      Status      `json:"status"`
}

// Judge applies the tables to one key's facts.
func Judge(f Facts, p Policy) Judgement {
	p = p.WithDefaults()
	e, er := eligibility(f)
	j := Judgement{Eligibility: e, EligRule: er.ID, EligReason: er.Reason}
	for _, check := range CheckOrder {
		for _, r := range CheckRules {
			if r.Check == check && r.match(f, p, e) {
				j.Checks = append(j.Checks, Result{Check: check, Status: r.Status, Rule: r.ID, Reason: r.reason(f, p)})
				break
			}
		}
	}
	j.Status = Overall(f, j.Checks)
	return j
}

// Overall combines check results into the key's status: any failure makes
// the key non-compliant; otherwise any unknown makes it unknown; otherwise
// a key to which automatic rotation does not apply is "not eligible"
// (neither pass nor failure); otherwise it is compliant. A deleted key is
// not applicable.
func Overall(f Facts, checks []Result) Status {
	if f.Deleted {
		return NotApplicable
	}
	has := func(s Status) bool {
		for _, c := range checks {
			if c.Status == s {
				return true
			}
		}
		return false
	}
	switch {
	case has(NonCompliant):
		return NonCompliant
	case has(StatusUnknown):
		return StatusUnknown
	case has(NotEligible):
		return NotEligible
	}
	return Compliant
}
