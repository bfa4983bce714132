package rules

import (
	"strings"
	"testing"
	"time"
)

var sym = Facts{Manager: "CUSTOMER", Spec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS"}

func with(f Facts, mod func(*Facts)) Facts { mod(&f); return f }

func TestEligibility(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Facts
		want Eligibility
		rule string
	}{
		{"aws managed", Facts{Manager: "AWS", Spec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS"}, AWSManaged, "E1"},
		{"customer symmetric", sym, Eligible, "E7"},
		{"rotation setting accepted, nothing else known", Facts{RotationAccepted: true}, Eligible, "E6"},
		{"imported", with(sym, func(f *Facts) { f.Origin = "EXTERNAL" }), NotEligibleKey, "E2"},
		// A record of an accepted EnableKeyRotation on an imported key
		// contradicts KMS: the origin decides.
		{"imported with an accepted EnableKeyRotation", with(sym, func(f *Facts) { f.Origin, f.RotationAccepted = "EXTERNAL", true }), NotEligibleKey, "E2"},
		{"cloudhsm", with(sym, func(f *Facts) { f.Origin = "AWS_CLOUDHSM" }), NotEligibleKey, "E3"},
		{"xks", with(sym, func(f *Facts) { f.Origin = "EXTERNAL_KEY_STORE" }), NotEligibleKey, "E3"},
		{"custom store id only", Facts{CustomKeyStore: "cks-1234"}, NotEligibleKey, "E3"},
		{"hmac", with(sym, func(f *Facts) { f.Spec = "HMAC_256" }), NotEligibleKey, "E4"},
		{"rsa", with(sym, func(f *Facts) { f.Spec = "RSA_2048" }), NotEligibleKey, "E5"},
		{"ecc", with(sym, func(f *Facts) { f.Spec = "ECC_NIST_P256" }), NotEligibleKey, "E5"},
		{"spec known, manager unknown", Facts{Spec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS"}, EligibleUnknown, "E8"},
		{"nothing known", Facts{}, EligibleUnknown, "E8"},
	} {
		got, r := Classify(c.f)
		if got != c.want || r.ID != c.rule {
			t.Errorf("%s: got %s by %s, want %s by %s", c.name, got, r.ID, c.want, c.rule)
		}
	}
}

func check(j Judgement, id string) Result {
	for _, r := range j.Checks {
		if r.Check == id {
			return r
		}
	}
	return Result{}
}

func TestChecks(t *testing.T) {
	p := Policy{RotationDays: 365, ImportMaxDays: 90}
	deadline := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name           string
		f              Facts
		check          string
		want           Status
		rule, contains string
		overall        Status
	}{
		{"enabled", with(sym, func(f *Facts) { f.RotationEnabled = Yes }), CheckRotationEnabled, Compliant, "R3", "enabled", ""},
		{"disabled", with(sym, func(f *Facts) { f.RotationEnabled = No }), CheckRotationEnabled, NonCompliant, "R4", "disabled", NonCompliant},
		{"unknown rotation", sym, CheckRotationEnabled, StatusUnknown, "R5", "not established", StatusUnknown},
		{"disabled but eligibility unknown", Facts{RotationEnabled: No}, CheckRotationEnabled, StatusUnknown, "R5", "eligibility", StatusUnknown},
		{"aws managed", Facts{Manager: "AWS"}, CheckRotationEnabled, NotApplicable, "R1", "AWS managed", Compliant},
		{"asymmetric never fails", Facts{Manager: "CUSTOMER", Spec: "RSA_4096", Origin: "AWS_KMS", RotationEnabled: No, PendingDeletion: No}, CheckRotationEnabled, NotEligible, "R2", "does not apply", NotEligible},
		{"asymmetric policy", Facts{Manager: "CUSTOMER", Spec: "RSA_4096", Origin: "AWS_KMS", MaterialAgeMin: 900, PendingDeletion: No}, CheckRotationPeriod, NotEligible, "P2", "replacing the key", NotEligible},
		{"external with compensation", with(sym, func(f *Facts) {
			f.Origin, f.CompensatingKnown, f.CompensatingAge, f.PendingDeletion = "EXTERNAL", true, 10, No
			f.ImportModelKnown, f.ImportValidKnown, f.ImportExpires, f.ImportValidDays = true, true, Yes, 30
		}), CheckRotationPeriod, NotEligible, "P2", "compensating control evidenced", NotEligible},
		{"external without compensation", with(sym, func(f *Facts) {
			f.Origin, f.PendingDeletion, f.ImportModelKnown, f.ImportValidKnown, f.ImportExpires, f.ImportValidDays = "EXTERNAL", No, true, true, Yes, 30
		}), CheckRotationPeriod, NotEligible, "P2", "no compensating control", NotEligible},
		{"external stale compensation", with(sym, func(f *Facts) { f.Origin, f.CompensatingKnown, f.CompensatingAge = "EXTERNAL", true, 400 }), CheckRotationPeriod, NotEligible, "P2", "longer than the policy", ""},
		{"period too long", with(sym, func(f *Facts) { f.RotationEnabled, f.RotationPeriod = Yes, 730 }), CheckRotationPeriod, NonCompliant, "P3", "730 days", NonCompliant},
		{"overdue exact", with(sym, func(f *Facts) { f.MaterialAgeMax, f.MaterialAgeMaxKnown, f.MaterialAgeMin = 400, true, 400 }), CheckRotationPeriod, NonCompliant, "P4", "overdue by 35", NonCompliant},
		{"overdue lower bound", with(sym, func(f *Facts) { f.MaterialAgeMin = 370 }), CheckRotationPeriod, NonCompliant, "P4", "at least 5", NonCompliant},
		{"old but gap since", with(sym, func(f *Facts) { f.MaterialAgeMax, f.MaterialAgeMaxKnown, f.MaterialAgeMin = 400, true, 20 }), CheckRotationPeriod, StatusUnknown, "P6", "coverage gap", StatusUnknown},
		{"young", with(sym, func(f *Facts) { f.MaterialAgeMax, f.MaterialAgeMaxKnown = 30, true }), CheckRotationPeriod, Compliant, "P5", "at most 30", ""},
		{"age unknown", sym, CheckRotationPeriod, StatusUnknown, "P6", "not established", StatusUnknown},
		{"pending deletion", with(sym, func(f *Facts) { f.PendingDeletion, f.DeletionDate = Yes, deadline }), CheckNotDeleting, NonCompliant, "D2", "2025-04-01", NonCompliant},
		{"not pending", with(sym, func(f *Facts) { f.PendingDeletion = No }), CheckNotDeleting, Compliant, "D3", "not scheduled", ""},
		{"deletion unknown", sym, CheckNotDeleting, StatusUnknown, "D4", "not established", StatusUnknown},
		{"aws managed deletion", Facts{Manager: "AWS"}, CheckNotDeleting, NotApplicable, "D1", "cannot be scheduled", Compliant},
		{"import never expires", with(sym, func(f *Facts) { f.Origin, f.ImportModelKnown, f.ImportExpires = "EXTERNAL", true, No }), CheckImportExpiry, NonCompliant, "I1", "not to expire", NonCompliant},
		{"import too long", with(sym, func(f *Facts) {
			f.Origin, f.ImportModelKnown, f.ImportValidKnown, f.ImportExpires, f.ImportValidDays = "EXTERNAL", true, true, Yes, 180
		}), CheckImportExpiry, NonCompliant, "I2", "180 days", NonCompliant},
		{"import ok", with(sym, func(f *Facts) {
			f.Origin, f.ImportModelKnown, f.ImportValidKnown, f.ImportExpires, f.ImportValidDays = "EXTERNAL", true, true, Yes, 60
		}), CheckImportExpiry, Compliant, "I3", "60 days", ""},
		{"import unknown", with(sym, func(f *Facts) { f.Origin = "EXTERNAL" }), CheckImportExpiry, StatusUnknown, "I4", "not in the logs", StatusUnknown},
		// The model without the import's time (an inventory snapshot):
		// "does not expire" fails, an expiry cannot be judged.
		{"model only, expires", with(sym, func(f *Facts) { f.Origin, f.ImportModelKnown, f.ImportExpires = "EXTERNAL", true, Yes }), CheckImportExpiry, StatusUnknown, "I4", "", StatusUnknown},
		{"import hidden by a gap", with(sym, func(f *Facts) { f.Origin, f.ImportUnknownSince = "EXTERNAL", deadline }), CheckImportExpiry, StatusUnknown, "I4", "unknown since 2025-04-01", StatusUnknown},
		{"rotation unknown since", with(sym, func(f *Facts) { f.RotationUnknownSince = deadline }), CheckRotationEnabled, StatusUnknown, "R5", "unknown since 2025-04-01", StatusUnknown},
		{"deletion unknown since", with(sym, func(f *Facts) { f.DeletionUnknownSince = deadline }), CheckNotDeleting, StatusUnknown, "D4", "unknown since 2025-04-01", StatusUnknown},
		{"import n/a for kms origin", sym, CheckImportExpiry, NotApplicable, "I0", "", ""},
		{"deleted key", with(sym, func(f *Facts) { f.Deleted, f.RotationEnabled = true, No }), CheckRotationEnabled, NotApplicable, "R0", "deleted", NotApplicable},
		{"all good", with(sym, func(f *Facts) {
			f.RotationEnabled, f.RotationPeriod, f.MaterialAgeMax, f.MaterialAgeMaxKnown, f.PendingDeletion = Yes, 365, 10, true, No
		}), CheckRotationEnabled, Compliant, "R3", "", Compliant},
	} {
		j := Judge(c.f, p)
		r := check(j, c.check)
		if r.Status != c.want || r.Rule != c.rule || !strings.Contains(r.Reason, c.contains) {
			t.Errorf("%s: %s = %s by %s (%q); want %s by %s containing %q", c.name, c.check, r.Status, r.Rule, r.Reason, c.want, c.rule, c.contains)
		}
		if c.overall != "" && j.Status != c.overall {
			t.Errorf("%s: overall %s, want %s (checks %+v)", c.name, j.Status, c.overall, j.Checks)
		}
	}
}

// Not-eligible keys are never reported as plain failures or passes, whatever
// else the facts say about rotation.
func TestNotEligibleIsNeverPassOrFail(t *testing.T) {
	for _, spec := range []string{"RSA_2048", "ECC_NIST_P384", "HMAC_512", "ML_DSA_65"} {
		for _, rot := range []Tri{Unknown, Yes, No} {
			for _, age := range []int{0, 10, 1000} {
				f := Facts{Manager: "CUSTOMER", Spec: spec, Origin: "AWS_KMS", RotationEnabled: rot, MaterialAgeMin: age, MaterialAgeMax: age, MaterialAgeMaxKnown: true, PendingDeletion: No}
				j := Judge(f, Policy{})
				for _, c := range j.Checks[:2] {
					if c.Status != NotEligible {
						t.Errorf("%s rotation %s age %d: %s is %s", spec, rot, age, c.Check, c.Status)
					}
				}
				if j.Status != NotEligible {
					t.Errorf("%s: overall %s", spec, j.Status)
				}
			}
		}
	}
}

// Every check has a final catch-all row, so Judge always decides.
func TestEveryCheckDecides(t *testing.T) {
	for _, c := range CheckOrder {
		var last CheckRule
		for _, r := range CheckRules {
			if r.Check == c {
				last = r
			}
		}
		if last.When != "otherwise" {
			t.Errorf("check %s has no catch-all row", c)
		}
		if ControlFor(c).Title == "" {
			t.Errorf("check %s has no control mapping", c)
		}
	}
	j := Judge(Facts{}, Policy{})
	if len(j.Checks) != len(CheckOrder) {
		t.Fatalf("Judge returned %d checks", len(j.Checks))
	}
}

func TestCISNumbering(t *testing.T) {
	refs := strings.Join(ControlFor(CheckRotationEnabled).Refs, "\n")
	for _, s := range []string{"v1.5.0 and v2.0.0: 3.8", "v3.0.0 and v5.0.0: 3.6", "v6.0.0: 4.6", "KMS.4", "cmk-backing-key-rotation-enabled"} {
		if !strings.Contains(refs, s) {
			t.Errorf("rotation control does not cite %q", s)
		}
	}
	refs = strings.Join(ControlFor(CheckNotDeleting).Refs, "\n")
	for _, s := range []string{"KMS.3", "kms-cmk-not-scheduled-for-deletion"} {
		if !strings.Contains(refs, s) {
			t.Errorf("deletion control does not cite %q", s)
		}
	}
}
