package rotation

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/report/rules"
)

var genTime = time.Date(2025, 4, 2, 9, 0, 0, 0, time.UTC)

func build(t *testing.T, s *fixture.Scenario, inventory bool) *Report {
	t.Helper()
	st := fixture.Build(t, s, inventory)
	r, err := Build(context.Background(), st, Options{
		Scope:     report.Scope{From: fixture.PeriodStart, To: fixture.PeriodEnd},
		Policy:    rules.Policy{RotationDays: 90, ImportMaxDays: 365},
		Now:       func() time.Time { return genTime },
		Generator: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exported reads the model back from its JSON export, so the assertions
// check what a machine would check.
func exported(t *testing.T, r *Report) (map[string]Key, Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	keys := map[string]Key{}
	for _, k := range back.Keys {
		keys[k.ARN] = k
	}
	return keys, back
}

func check(k Key, id string) rules.Result {
	for _, c := range k.Judgement.Checks {
		if c.Check == id {
			return c
		}
	}
	return rules.Result{}
}

func flag(k Key, id string) *Flag {
	for i := range k.Flags {
		if k.Flags[i].ID == id {
			return &k.Flags[i]
		}
	}
	return nil
}

func ts(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// TestRotationGroundTruth checks every key of the scenario against what
// its hand-written records establish (see internal/fixture/scenario.go).
func TestRotationGroundTruth(t *testing.T) {
	s := fixture.NewScenario()
	r := build(t, s, false)
	keys, back := exported(t, r)
	K := func(name string) Key {
		k, ok := keys[s.Keys[name]]
		if !ok {
			t.Fatalf("key %s (%s) not in the report", name, s.Keys[name])
		}
		return k
	}
	type want struct {
		key, status, eligibility, rotation string
		checks                             map[string]string // check -> rule
		flags                              []string
		age                                int // -1: unknown
	}
	for _, w := range []want{
		{"disabled", "non-compliant", "eligible", "no", map[string]string{"rotation-enabled": "R4", "rotation-period": "P4", "not-pending-deletion": "D3"},
			[]string{FlagRotationDisabled, FlagRotationOverdue}, 116},
		{"rotated", "compliant", "eligible", "yes", map[string]string{"rotation-enabled": "R3", "rotation-period": "P5", "not-pending-deletion": "D3"}, nil, 16},
		{"old", "unknown", "unknown", "unknown", map[string]string{"rotation-enabled": "R5", "rotation-period": "P6", "not-pending-deletion": "D3"},
			[]string{FlagCreatedBefore}, -1},
		{"asym", "not-eligible", "not-eligible", "n/a", map[string]string{"rotation-enabled": "R2", "rotation-period": "P2"}, nil, 111},
		{"hmac", "not-eligible", "not-eligible", "n/a", map[string]string{"rotation-enabled": "R2", "rotation-period": "P2"}, nil, 101},
		{"external", "not-eligible", "not-eligible", "n/a", map[string]string{"rotation-enabled": "R2", "rotation-period": "P2", "imported-material-expiry": "I3"},
			[]string{FlagMaterialExpiring}, 20},
		{"deleting", "non-compliant", "eligible", "yes", map[string]string{"rotation-period": "P3", "not-pending-deletion": "D2"},
			[]string{FlagPendingDeletion, FlagUseWhileUnusable, FlagRotationOverdue}, 106},
		{"keydisabled", "compliant", "eligible", "yes", map[string]string{"rotation-enabled": "R3", "rotation-period": "P5"},
			[]string{FlagKeyDisabled, FlagUseWhileUnusable}, 58},
		{"gappy", "unknown", "eligible", "unknown", map[string]string{"rotation-enabled": "R5", "rotation-period": "P6", "not-pending-deletion": "D4"},
			[]string{FlagCoverageGap}, 120},
	} {
		k := K(w.key)
		if string(k.Status()) != w.status || string(k.Judgement.Eligibility) != w.eligibility || k.RotationEnabled != w.rotation {
			t.Errorf("%s: status %s, eligibility %s, rotation %s; want %s, %s, %s", w.key, k.Status(), k.Judgement.Eligibility, k.RotationEnabled,
				w.status, w.eligibility, w.rotation)
		}
		for c, rule := range w.checks {
			if got := check(k, c); got.Rule != rule {
				t.Errorf("%s: %s decided by %s (%s: %s), want %s", w.key, c, got.Rule, got.Status, got.Reason, rule)
			}
		}
		for _, f := range w.flags {
			if flag(k, f) == nil {
				t.Errorf("%s: flag %s missing (flags %+v)", w.key, f, k.Flags)
			}
		}
		switch {
		case w.age < 0 && k.MaterialAgeDays != nil:
			t.Errorf("%s: material age %d, want unknown", w.key, *k.MaterialAgeDays)
		case w.age >= 0 && (k.MaterialAgeDays == nil || *k.MaterialAgeDays != w.age):
			t.Errorf("%s: material age %v, want %d", w.key, k.MaterialAgeDays, w.age)
		}
	}

	// Rotation evidence, dates and ids.
	rot := K("rotated")
	if rot.RotationPeriodDays != 90 || rot.Rotations != 2 || !rot.LastRotation.Equal(ts("2025-03-15T14:01:00Z")) || rot.LastRotationType != "ON_DEMAND" {
		t.Errorf("rotated: period %d, rotations %d, last %s %s", rot.RotationPeriodDays, rot.Rotations, rot.LastRotation, rot.LastRotationType)
	}
	if !rot.NextAutomaticRotation.Equal(ts("2025-06-01T01:00:00Z")) {
		t.Errorf("rotated: next automatic rotation %s, want 2025-06-01 (90 days after the automatic one; on-demand rotations keep the schedule)", rot.NextAutomaticRotation)
	}
	dis := K("disabled")
	if dis.DaysOverdue != 26 || flag(dis, FlagRotationDisabled).Evidence[0] != s.IDs["disabled.create"] {
		t.Errorf("disabled: overdue %d, rotation-disabled evidence %v", dis.DaysOverdue, flag(dis, FlagRotationDisabled).Evidence)
	}
	del := K("deleting")
	if !del.DeletionDate.Equal(ts("2025-04-19T10:00:00Z")) || del.State != "PendingDeletion" || del.RotationPeriodDays != 365 {
		t.Errorf("deleting: deletion %s, state %s, period %d", del.DeletionDate, del.State, del.RotationPeriodDays)
	}
	if f := flag(del, FlagUseWhileUnusable); f.Count != 1 || f.Evidence[0] != s.IDs["deleting.refused"] {
		t.Errorf("deleting: refused use %+v", f)
	}
	if f := flag(del, FlagPendingDeletion); f.Evidence[0] != s.IDs["deleting.schedule"] || !strings.Contains(f.Text, "2025-04-19") {
		t.Errorf("deleting: pending flag %+v", f)
	}
	off := K("keydisabled")
	if off.State != "Disabled" || flag(off, FlagKeyDisabled).Evidence[0] != s.IDs["keydisabled.disable"] ||
		flag(off, FlagUseWhileUnusable).Evidence[0] != s.IDs["keydisabled.refused"] {
		t.Errorf("keydisabled: state %s flags %+v", off.State, off.Flags)
	}
	ext := K("external")
	if !strings.Contains(ext.Compensating, "NEW_KEY_MATERIAL import 2025-03-10") || !strings.Contains(ext.Compensating, "mat-2") ||
		!strings.Contains(check(ext, rules.CheckRotationPeriod).Reason, "compensating control evidenced") {
		t.Errorf("external: compensating %q / %q", ext.Compensating, check(ext, rules.CheckRotationPeriod).Reason)
	}
	if !ext.ImportValidTo.Equal(ts("2025-04-15T08:00:00Z")) || ext.ImportExpirationModel != "KEY_MATERIAL_EXPIRES" {
		t.Errorf("external: valid to %s model %s", ext.ImportValidTo, ext.ImportExpirationModel)
	}
	old := K("old")
	if old.CreatedInLogs || old.MaterialAgeMinDays != 121 {
		t.Errorf("old: created in logs %v, material at least %d days (logs cover 121)", old.CreatedInLogs, old.MaterialAgeMinDays)
	}
	gap := K("gappy")
	if len(gap.Gaps) != 1 || gap.Gaps[0].From != "2025-03-10" || gap.Gaps[0].Days != 3 {
		t.Errorf("gappy: gaps %+v", gap.Gaps)
	}
	if len(back.Coverage) != 1 || back.Coverage[0].Account != fixture.A2 {
		t.Errorf("coverage gaps %+v", back.Coverage)
	}

	// Summary counts, by status and by control.
	wantStatus := map[rules.Status]int{rules.Compliant: 2, rules.NonCompliant: 2, rules.StatusUnknown: 2, rules.NotEligible: 3, rules.NotApplicable: 0}
	for st, n := range wantStatus {
		if back.Summary.ByStatus[st] != n {
			t.Errorf("summary %s = %d, want %d (%v)", st, back.Summary.ByStatus[st], n, back.Summary.ByStatus)
		}
	}
	if c := back.Summary.Controls[0]; c.Check != rules.CheckRotationEnabled || c.Counts[rules.Compliant] != 3 || c.Counts[rules.NonCompliant] != 1 ||
		c.Counts[rules.StatusUnknown] != 2 || c.Counts[rules.NotEligible] != 3 {
		t.Errorf("rotation-enabled control counts %+v", c.Counts)
	}
	if back.Meta.InputSHA256 == "" || back.Meta.InputRows == 0 || back.Meta.Provenance.Files == 0 {
		t.Errorf("meta %+v", back.Meta)
	}
	// Every finding's events are in the appendix.
	inApp := map[string]bool{}
	for _, e := range back.Evidence {
		inApp[e.EventID] = true
	}
	for _, id := range []string{s.IDs["disabled.create"], s.IDs["deleting.schedule"], s.IDs["deleting.refused"], s.IDs["keydisabled.refused"],
		s.IDs["external.import2"], s.IDs["external.ondemand"]} {
		if !inApp[id] {
			t.Errorf("evidence appendix lacks %s", id)
		}
	}
}

// A key created before the logs is unknown from CloudTrail alone, and
// known once an inventory is ingested.
func TestInventoryResolvesKeyOlderThanTheLogs(t *testing.T) {
	s := fixture.NewScenario()
	before, _ := exported(t, build(t, s, false))
	after, back := exported(t, build(t, s, true))
	arn := s.Keys["old"]
	b, a := before[arn], after[arn]
	if b.RotationEnabled != "unknown" || b.Status() != rules.StatusUnknown {
		t.Fatalf("without inventory: rotation %s, status %s; want unknown, unknown", b.RotationEnabled, b.Status())
	}
	if a.RotationEnabled != "yes" || a.RotationPeriodDays != 365 || a.Judgement.Eligibility != rules.Eligible {
		t.Fatalf("with inventory: rotation %s period %d eligibility %s", a.RotationEnabled, a.RotationPeriodDays, a.Judgement.Eligibility)
	}
	// Period 365 > policy 90, and the material (last rotated 2024-08-01,
	// NextRotationDate minus a period) is 243 days old.
	if check(a, rules.CheckRotationEnabled).Status != rules.Compliant || check(a, rules.CheckRotationPeriod).Rule != "P3" ||
		a.MaterialAgeDays == nil || *a.MaterialAgeDays != 243 || a.Status() != rules.NonCompliant {
		t.Errorf("with inventory: checks %+v age %v", a.Judgement.Checks, a.MaterialAgeDays)
	}
	if !strings.HasPrefix(a.Sources["rotation_enabled"], "inventory as of 2025-03-28") {
		t.Errorf("source of the rotation setting: %q", a.Sources["rotation_enabled"])
	}
	// The AWS managed key is known only from the inventory.
	aws, ok := after[s.Keys["awsmanaged"]]
	if !ok || aws.Judgement.Eligibility != rules.AWSManaged || aws.Status() != rules.Compliant || aws.RotationEnabled != "by AWS" {
		t.Errorf("AWS managed key: %+v", aws.Judgement)
	}
	if back.Meta.Provenance.InventoryFiles != 1 {
		t.Errorf("inventory files %d", back.Meta.Provenance.InventoryFiles)
	}
}

// The PDF states the same figures and flags as the model, read back with
// pdftotext; the CSV has one row per key with the same statuses.
func TestRotationPDFAndCSV(t *testing.T) {
	s := fixture.NewScenario()
	r := build(t, s, false)
	dir := t.TempDir()
	pdf := filepath.Join(dir, "rotation.pdf")
	if err := report.WriteFile(pdf, false, r.WritePDF); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(pdf); fi.Mode().Perm() != 0o600 {
		t.Errorf("PDF mode %v", fi.Mode().Perm())
	}
	text := fixture.PDFText(t, pdf)
	flat := strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		"KMS key rotation compliance report",
		"2025-03-01 to 2025-03-31 (UTC, inclusive)",
		r.Meta.InputSHA256,
		r.Meta.Provenance.FilesSHA256,
		"cmk-backing-key-rotation-enabled", "KMS.3", "KMS.4", "v1.5.0 and v2.0.0: 3.8", "v3.0.0 and v5.0.0: 3.6", "v6.0.0: 4.6",
		"automatic rotation disabled on a customer managed symmetric key",
		"rotation overdue by 26 day(s)",
		"scheduled for deletion on 2025-04-19",
		"1 KMSInvalidStateException", "1 DisabledException",
		"imported key material expires 2025-04-15",
		"NEW_KEY_MATERIAL import 2025-03-10 (key material mat-2)",
		"444455556666/eu-west-1 2025-03-10 to 2025-03-12",
		"created before the logs begin",
		s.IDs["deleting.schedule"], s.IDs["external.import2"],
	} {
		if !strings.Contains(flat, want) && !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	// The summary table's counts, as rows "status N".
	for st, n := range map[string]string{"compliant": "2", "non-compliant": "2", "unknown": "2", "not-eligible": "3"} {
		if !regexp.MustCompile(`(?m)^\s*` + st + `\s+` + n + `\s`).MatchString(text) {
			t.Errorf("PDF summary: no row %q with %s keys", st, n)
		}
	}
	// Page numbers and the running header.
	if !regexp.MustCompile(`Page 2 of \d+`).MatchString(text) || strings.Count(text, "KMS key rotation compliance report") < 3 {
		t.Errorf("page numbers or running header missing")
	}

	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(r.Keys) || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("CSV: %d rows, header %v", len(rows), rows[0])
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, row := range rows[1:] {
		for _, k := range r.Keys {
			if k.ARN == row[col["key_arn"]] && (row[col["status"]] != string(k.Status()) || row[col["rotation_enabled"]] != k.RotationEnabled) {
				t.Errorf("CSV row for %s: %s/%s, model %s/%s", k.ARN, row[col["status"]], row[col["rotation_enabled"]], k.Status(), k.RotationEnabled)
			}
		}
	}
	// Output files are never silently overwritten.
	if err := report.WriteFile(pdf, false, r.WritePDF); err == nil {
		t.Error("an existing report was overwritten without force")
	}
}

// Same database, same report: the PDF bytes and the input digest repeat.
func TestRotationDeterministic(t *testing.T) {
	s := fixture.NewScenario()
	st := fixture.Build(t, s, true)
	var out [2]bytes.Buffer
	var sums [2]string
	for i := range out {
		r, err := Build(context.Background(), st, Options{Scope: report.Scope{From: fixture.PeriodStart, To: fixture.PeriodEnd}, Now: func() time.Time { return genTime }})
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = r.Meta.InputSHA256
		if err := r.WritePDF(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	if sums[0] != sums[1] || !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
		t.Error("two renderings of the same database differ")
	}
}

// The findings table names at most MaxEvidencePerFlag events per key; the
// PDF's evidence appendix leaves out the ones it does not name (a key
// refused thousands of calls would fill hundreds of pages), says so, and
// the JSON export keeps them all.
func TestEvidenceAppendixListsTheEventsThePDFNames(t *testing.T) {
	s := fixture.NewScenario()
	deleting := s.Keys["deleting"]
	var refused []string
	for i := 0; i < MaxEvidencePerFlag+8; i++ {
		refused = append(refused, s.Tree.Add(fixture.Event{Time: time.Date(2025, 3, 23, 10, i, 0, 0, time.UTC), Name: "Encrypt",
			Account: fixture.A1, Region: fixture.R1, Principal: fixture.AppS2, KeyARN: deleting, Error: "KMSInvalidStateException",
			Request: map[string]any{"keyId": deleting}}))
	}
	r := build(t, s, false)
	_, back := exported(t, r)
	inJSON := map[string]bool{}
	for _, e := range back.Evidence {
		inJSON[e.EventID] = true
	}
	for _, id := range refused {
		if !inJSON[id] {
			t.Fatalf("refused call %s missing from the JSON evidence", id)
		}
	}
	pdf := filepath.Join(t.TempDir(), "rotation.pdf")
	if err := report.WriteFile(pdf, false, r.WritePDF); err != nil {
		t.Fatal(err)
	}
	text := fixture.PDFText(t, pdf)
	appendix := text[strings.Index(text, "Appendix: evidence events"):]
	flat := strings.Join(strings.Fields(appendix), " ")
	if !strings.Contains(flat, "The findings above name at most 12 events per key:") || !strings.Contains(flat, "are in the JSON export") {
		t.Fatalf("the appendix does not say it leaves events out:\n%.600s", flat)
	}
	listed := 0
	for _, id := range refused {
		if strings.Contains(appendix, id) {
			listed++
		}
	}
	if listed == 0 || listed >= len(refused) {
		t.Fatalf("%d of the key's %d refused calls are in the appendix; want the ones the findings name, not all", listed, len(refused))
	}
	// Events of other findings are all still there.
	for _, label := range []string{"deleting.schedule", "external.import2", "keydisabled.refused"} {
		if !strings.Contains(appendix, s.IDs[label]) {
			t.Errorf("appendix lacks %s (%s)", label, s.IDs[label])
		}
	}
}
