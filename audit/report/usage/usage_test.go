package usage

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

func build(t *testing.T, s *fixture.Scenario, inventory bool) *Report {
	t.Helper()
	st := fixture.Build(t, s, inventory)
	r, err := Build(context.Background(), st, Options{
		Scope: report.Scope{From: fixture.PeriodStart, To: fixture.PeriodEnd},
		Now:   func() time.Time { return time.Date(2025, 4, 2, 9, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func roundTrip(t *testing.T, r *Report) Report {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	return back
}

func byName(c []Count) map[string][2]int64 {
	m := map[string][2]int64{}
	for _, x := range c {
		m[x.Name] = [2]int64{x.Calls, x.Failed}
	}
	return m
}

func eq(t *testing.T, what string, got, want map[string][2]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", what, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%s] = %v, want %v (all: %v)", what, k, got[k], v, got)
		}
	}
}

const (
	appServer = "arn:aws:iam::" + fixture.A1 + ":role/AppServer"
	officer   = "arn:aws:iam::" + fixture.A1 + ":user/security-officer"
	carol     = "arn:aws:iam::" + fixture.A1 + ":user/carol"
	alice     = "arn:aws:iam::" + fixture.A1 + ":user/alice"
	jurgen    = "arn:aws:iam::" + fixture.A1 + ":user/jürgen.müller"
	partner   = "arn:aws:iam::" + fixture.AX + ":role/Partner"
)

// TestUsageGroundTruth checks the figures against the records of
// internal/fixture/scenario.go, counted by hand.
func TestUsageGroundTruth(t *testing.T) {
	s := fixture.NewScenario()
	r := roundTrip(t, build(t, s, true))
	// 59 heartbeats (31 days in A1, 28 in A2 around its 3-day gap), 10
	// lifecycle events, 20 on the pre-logs key, 4 on other keys.
	want := Totals{Events: 93, CryptoCalls: 22, Failed: 5, OffHours: 3, CrossAccount: 2, KeysUsed: 5, KeysInScope: 10,
		Principals: 10, NewPrincipals: 6, AdminEvents: 6}
	if r.Totals != want {
		t.Errorf("totals\n got %+v\nwant %+v", r.Totals, want)
	}
	keys := map[string]Key{}
	for _, k := range r.Keys {
		keys[k.ARN] = k
	}
	old := keys[s.Keys["old"]]
	if old.Events != 20 || old.CryptoCalls != 16 || old.Failed != 3 || old.OffHours != 2 {
		t.Errorf("old: events %d crypto %d failed %d off %d", old.Events, old.CryptoCalls, old.Failed, old.OffHours)
	}
	eq(t, "old operations", byName(old.Operations), map[string][2]int64{"Decrypt": {11, 2}, "GenerateDataKey": {3, 0}, "Encrypt": {1, 0},
		"ReEncryptFrom": {1, 0}, "PutKeyPolicy": {1, 0}, "CreateGrant": {1, 0}, "RetireGrant": {1, 0}, "RevokeGrant": {1, 1}})
	// Two AppServer sessions fold into the role.
	eq(t, "old principals", byName(old.Principals), map[string][2]int64{appServer: {11, 0}, officer: {3, 1}, carol: {2, 1}, partner: {2, 1},
		alice: {1, 0}, jurgen: {1, 0}})
	eq(t, "old accounts", byName(old.Accounts), map[string][2]int64{fixture.A1: {18, 2}, fixture.AX: {2, 1}})
	eq(t, "old cross-account", byName(old.CrossAccount), map[string][2]int64{fixture.AX: {2, 1}})
	eq(t, "old errors", byName(old.Errors), map[string][2]int64{"AccessDenied": {3, 3}})
	daily := map[string][2]int64{}
	for _, d := range old.Daily {
		if d.Calls > 0 {
			daily[d.Day] = [2]int64{d.Calls, d.Failed}
		}
	}
	eq(t, "old daily", daily, map[string][2]int64{"2025-03-03": {3, 0}, "2025-03-04": {4, 0}, "2025-03-05": {4, 1}, "2025-03-06": {2, 0},
		"2025-03-07": {1, 1}, "2025-03-08": {1, 0}, "2025-03-25": {1, 0}})
	// Every series, a used key's or the shared zeros of a key without a
	// cryptographic call, names every day of the period and adds up.
	idle := 0
	for _, k := range append(r.Keys, Key{ARN: "(no key)", Usage: r.NoKey}) {
		var calls, failed int64
		if len(k.Daily) != len(r.Days) {
			t.Fatalf("%s: %d days in its series, want %d", k.ARN, len(k.Daily), len(r.Days))
		}
		for i, d := range k.Daily {
			if d.Day != r.Days[i] {
				t.Fatalf("%s: day %d of its series is %q, want %q", k.ARN, i, d.Day, r.Days[i])
			}
			calls, failed = calls+d.Calls, failed+d.Failed
		}
		if calls != k.CryptoCalls || failed > calls {
			t.Errorf("%s: its series adds up to %d calls (%d failed), want %d", k.ARN, calls, failed, k.CryptoCalls)
		}
		if k.CryptoCalls == 0 {
			idle++
		}
	}
	if idle == 0 {
		t.Errorf("no key without a cryptographic call in the scenario: the shared series of zeros is not exercised")
	}
	if old.LastUse.Format(time.RFC3339) != "2025-03-25T09:00:00Z" || old.FirstUse.Format(time.RFC3339) != "2025-03-03T09:00:00Z" {
		t.Errorf("old: first/last use %s %s", old.FirstUse, old.LastUse)
	}
	rot := keys[s.Keys["rotated"]]
	eq(t, "rotated operations", byName(rot.Operations), map[string][2]int64{"ReEncryptTo": {1, 0}, "RotateKey": {2, 0}, "RotateKeyOnDemand": {1, 0}})
	dis := keys[s.Keys["disabled"]]
	eq(t, "disabled services", byName(dis.Services), map[string][2]int64{"s3.amazonaws.com": {1, 0}})
	eq(t, "deleting errors", byName(keys[s.Keys["deleting"]].Errors), map[string][2]int64{"KMSInvalidStateException": {1, 1}})
	eq(t, "keydisabled errors", byName(keys[s.Keys["keydisabled"]].Errors), map[string][2]int64{"DisabledException": {1, 1}})
	eq(t, "asym operations", byName(keys[s.Keys["asym"]].Operations), map[string][2]int64{"Sign": {1, 0}, "Verify": {1, 0}})
	eq(t, "hmac operations", byName(keys[s.Keys["hmac"]].Operations), map[string][2]int64{"GenerateMac": {1, 0}})

	var newP []string
	for _, p := range r.Principals {
		if p.New {
			newP = append(newP, p.Identity)
			if p.FirstEventID == "" {
				t.Errorf("new principal %s has no first event id", p.Identity)
			}
		}
	}
	if got := strings.Join(newP, ","); !strings.Contains(got, carol) || !strings.Contains(got, jurgen) || !strings.Contains(got, partner) ||
		!strings.Contains(got, appServer) || strings.Contains(got, alice) || strings.Contains(got, officer) {
		t.Errorf("new principals: %v", newP)
	}
	var unused []string
	for _, u := range r.Unused {
		for name, arn := range s.Keys {
			if arn == u.ARN {
				unused = append(unused, name)
			}
		}
		if u.ARN == s.Keys["gappy"] && !strings.Contains(u.Caveat, "3 day(s)") {
			t.Errorf("gappy: no coverage caveat: %q", u.Caveat)
		}
	}
	if got := strings.Join(sorted(unused), ","); got != "awsmanaged,deleting,external,gappy,keydisabled" {
		t.Errorf("unused keys: %s", got)
	}
	var admin []string
	for _, a := range r.Admin {
		admin = append(admin, a.Name+"/"+a.EventID+"/"+a.Error)
	}
	wantAdmin := []string{"DisableKey/" + s.IDs["keydisabled.disable"] + "/", "PutKeyPolicy/" + s.IDs["admin.policy"] + "/",
		"CreateGrant/" + s.IDs["admin.grant"] + "/", "RetireGrant/" + s.IDs["admin.retire"] + "/",
		"RevokeGrant/" + s.IDs["admin.revoke"] + "/AccessDenied", "ScheduleKeyDeletion/" + s.IDs["deleting.schedule"] + "/"}
	if strings.Join(admin, " ") != strings.Join(wantAdmin, " ") {
		t.Errorf("admin events\n got %v\nwant %v", admin, wantAdmin)
	}
	checks := map[string]LastUseCheck{}
	for _, c := range r.LastUse {
		checks[c.KeyARN] = c
	}
	if c := checks[s.Keys["old"]]; !c.Agree || c.CloudTrailOp != "Decrypt" {
		t.Errorf("old: last-use check %+v", c)
	}
	if c := checks[s.Keys["disabled"]]; c.Agree || !strings.Contains(c.Note, "14.6 days later than CloudTrail") {
		t.Errorf("disabled: last-use check %+v", c)
	}
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// The PDF and the CSV state the same figures as the model.
func TestUsagePDFAndCSV(t *testing.T) {
	s := fixture.NewScenario()
	r := build(t, s, true)
	path := filepath.Join(t.TempDir(), "usage.pdf")
	if err := report.WriteFile(path, false, r.WritePDF); err != nil {
		t.Fatal(err)
	}
	text := fixture.PDFText(t, path)
	flat := strings.Join(strings.Fields(text), " ")
	for _, want := range []string{
		"KMS key usage report", r.Meta.InputSHA256,
		"KMS events in scope 93", "Cryptographic calls 22", "Failed calls 5",
		"Cryptographic calls outside business hours 3", "Calls by a principal of another account 2",
		"Keys in scope / used 10 / 5", "Principals seen / new in the period 10 / 6",
		"jürgen.müller", "999988887777", "DISAGREE", "KMSInvalidStateException", "DisabledException",
		"total 22, peak", // the overall chart's legend
		s.IDs["admin.revoke"], s.IDs["deleting.schedule"],
		"444455556666/eu-west-1", "ReEncryptFrom", "ReEncryptTo",
	} {
		if !strings.Contains(flat, want) && !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	// The per-key operation table of the pre-logs key: Decrypt 11 calls, 2 failed.
	if !regexp.MustCompile(`(?m)^\s*Decrypt\s+11\s+2\s*$`).MatchString(text) {
		t.Error("PDF: no 'Decrypt 11 2' row")
	}

	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	find := func(section, key, name string) []string {
		for _, row := range rows {
			if row[0] == section && row[1] == key && row[2] == name {
				return row
			}
		}
		return nil
	}
	for _, c := range []struct{ section, key, name, calls, failed string }{
		{"total", "", "events", "93", "0"},
		{"total", "", "crypto_calls", "22", "0"},
		{"operation", s.Keys["old"], "Decrypt", "11", "2"},
		{"principal", s.Keys["old"], appServer, "11", "0"},
		{"cross_account", s.Keys["old"], fixture.AX, "2", "1"},
		{"key_day", s.Keys["old"], "2025-03-05", "4", "1"},
		{"error", s.Keys["deleting"], "KMSInvalidStateException", "1", "1"},
		{"last_use_check", s.Keys["disabled"], "disagree", "0", "0"},
	} {
		row := find(c.section, c.key, c.name)
		if row == nil || row[3] != c.calls || row[4] != c.failed {
			t.Errorf("CSV %s/%s/%s = %v, want calls %s failed %s", c.section, c.key, c.name, row, c.calls, c.failed)
		}
	}
}

func TestBusinessHours(t *testing.T) {
	bh, loc, err := BusinessHours{Zone: "Europe/Berlin", StartHour: 9, EndHour: 17}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	c := bhCache{bh: bh, loc: loc, bucket: -1}
	for _, x := range []struct {
		t   string
		out bool
	}{
		{"2025-03-04T07:59:00Z", true},  // 08:59 CET
		{"2025-03-04T08:00:00Z", false}, // 09:00 CET
		{"2025-03-04T15:59:00Z", false}, // 16:59 CET
		{"2025-03-04T16:00:00Z", true},  // 17:00 CET
		{"2025-03-08T10:00:00Z", true},  // Saturday
		{"2025-04-01T07:30:00Z", false}, // 09:30 CEST (summer time)
		{"2025-04-01T15:30:00Z", true},  // 17:30 CEST
	} {
		tt, _ := time.Parse(time.RFC3339, x.t)
		if got := c.outside(tt.Unix()); got != x.out {
			t.Errorf("%s outside = %v, want %v", x.t, got, x.out)
		}
	}
	if _, _, err := (BusinessHours{Zone: "Mars/Olympus"}).resolve(); err == nil {
		t.Error("unknown zone accepted")
	}
	if d, err := ParseWeekdays("Sun-Thu"); err != nil || !d[0] || !d[4] || d[5] || d[6] {
		t.Errorf("Sun-Thu = %v %v", d, err)
	}
}

// The period's events are read in row id order when their row ids are
// dense (the usual case), else through the time index in time order: the
// report must not depend on the order (only the input digest, which
// hashes the rows in the order read, differs). A generated database has
// service principals, errors, administrative events and first/last uses on
// every key.
func TestRowidPassEqualsIndexPass(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	st := generatedStore(t, start)
	// Files are loaded in path order (account, region, day), so row ids
	// are far from time order: the comparison means something.
	var inversions int
	st.DB().QueryRow(`SELECT count(*) FROM events a JOIN events b ON b.id = a.id + 1 WHERE b.time < a.time`).Scan(&inversions)
	if inversions < 3 {
		t.Fatalf("row ids follow time order too closely (%d inversions)", inversions)
	}
	defer func(v, p bool) { forceIndexPass, packIDs = v, p }(forceIndexPass, packIDs)
	var want []byte
	// In time order, in row id order, and in row id order with the ids
	// read one per column instead of packed in pairs.
	for _, c := range []struct{ index, packed bool }{{true, true}, {false, true}, {false, false}} {
		forceIndexPass, packIDs = c.index, c.packed
		r, err := Build(context.Background(), st, Options{Scope: report.Scope{From: start, To: start.Add(5 * 24 * time.Hour)},
			Now: func() time.Time { return start }})
		if err != nil {
			t.Fatal(err)
		}
		if r.Totals.Events < 12000 || len(r.Admin) == 0 || r.Totals.Principals < 10 || r.Totals.Failed == 0 || len(r.Evidence) == 0 {
			t.Fatalf("the generated database does not exercise the pass: %+v, %d admin events", r.Totals, len(r.Admin))
		}
		r.Meta.InputSHA256 = ""
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = buf.Bytes()
			continue
		}
		if !bytes.Equal(buf.Bytes(), want) {
			a, b := strings.Split(string(want), "\n"), strings.Split(buf.String(), "\n")
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Logf("line %d:\n index: %.400s\n rowid: %.400s", i, a[i], b[i])
					break
				}
			}
			t.Fatalf("the report read with %+v differs from the one read in time order", c)
		}
	}
}

// generatedStore is a database of 12,000 generated events over the five
// days from start, with service principals, errors, administrative events
// and first/last uses on every key.
func generatedStore(t *testing.T, start time.Time) *store.Store {
	t.Helper()
	dir := t.TempDir()
	if _, err := cloudtrailgen.Generate(filepath.Join(dir, "tree"), cloudtrailgen.Config{Seed: 7, KMSEvents: 12000, Start: start, Days: 5,
		FileInterval: 3 * time.Hour, ErrorRatio: 0.05}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.Run(context.Background(), st, []string{filepath.Join(dir, "tree")}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFirstSeenWithoutPrincipalIndex: the principals' first events, read
// by a search per principal, are those of the walk a database without the
// index (a bulk load not finished) falls back to: the same report and the
// same input digest (which hashes every principal's first event), over a
// period whose principals were seen before it.
func TestFirstSeenWithoutPrincipalIndex(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	st := generatedStore(t, start)
	build := func() []byte {
		t.Helper()
		r, err := Build(context.Background(), st, Options{Scope: report.Scope{From: start.AddDate(0, 0, 2), To: start.AddDate(0, 0, 5)},
			Now: func() time.Time { return start }})
		if err != nil {
			t.Fatal(err)
		}
		if r.Totals.Principals == 0 || r.Totals.NewPrincipals == r.Totals.Principals {
			t.Fatalf("no principal of the period was seen before it: %+v", r.Totals)
		}
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	want := build()
	if _, err := st.DB().Exec(`DROP INDEX events_principal_time`); err != nil {
		t.Fatal(err)
	}
	if got := build(); !bytes.Equal(got, want) {
		t.Fatal("the report differs without the principal index")
	}
}
