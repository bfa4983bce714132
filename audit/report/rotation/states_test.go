package rotation

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/report/rules"
	"github.com/keyceremony/keyceremony/audit/store"
)

// The state rules (docs/audit-reports.md, "State rules"): each row of the
// table is one or more cases of testdata/state-rules.json, each its own
// key in its own account (gaps are per account and region), with the
// gaps that matter to it and those that must not. One trail holds them
// all; the report is built once and every key checked against its row.

type stateCase struct {
	Row       string          `json:"row"`
	Name      string          `json:"name"`
	Events    []stateEvent    `json:"events"`
	Gaps      []string        `json:"gaps"`
	Inventory json.RawMessage `json:"inventory"`
	Want      stateWant       `json:"want"`
}

type stateEvent struct {
	Time       string         `json:"time"`
	Name       string         `json:"name"`
	Request    map[string]any `json:"request"`
	Response   map[string]any `json:"response"`
	Details    map[string]any `json:"details"`
	Additional map[string]any `json:"additional"`
}

type stateWant struct {
	RotationEnabled       string            `json:"rotation_enabled"`
	RotationPeriodDays    int               `json:"rotation_period_days"`
	PendingDeletion       string            `json:"pending_deletion"`
	State                 string            `json:"state"`
	Status                string            `json:"status"`
	EligibilityRule       string            `json:"eligibility_rule"`
	LastRotation          string            `json:"last_rotation"`
	LastRotationType      string            `json:"last_rotation_type"`
	NextAutomaticRotation string            `json:"next_automatic_rotation"`
	MaterialAgeExact      *bool             `json:"material_age_exact"`
	Rotations             *int              `json:"rotations"`
	Check                 map[string]string `json:"check"`  // check -> rule
	Reason                map[string]string `json:"reason"` // check -> part of its reason
	Source                map[string]string `json:"source"` // fact -> part of its source
	Flags                 []string          `json:"flags"`
	NoFlags               []string          `json:"no_flags"`
	FlagText              map[string]string `json:"flag_text"`
}

func TestStateRules(t *testing.T) {
	var spec struct {
		Period, Logs []string
		Policy       struct {
			RotationDays  int `json:"rotation_days"`
			ImportMaxDays int `json:"import_max_days"`
		}
		Rows []stateCase
	}
	b, err := os.ReadFile("testdata/state-rules.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time {
		d, err := time.Parse("2006-01-02", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const region = "eu-west-1"
	tree := &fixture.Tree{Start: day(spec.Logs[0]), End: day(spec.Logs[1]), Gaps: map[string]bool{}}
	dir := t.TempDir()
	paths := []string{}
	arns := make([]string, len(spec.Rows))
	for i, c := range spec.Rows {
		acct := fmt.Sprintf("1000000000%02d", i)
		arns[i] = fixture.KeyARN(acct, region, fmt.Sprintf("0000%04d-0000-4000-8000-000000000000", i))
		tree.Pairs = append(tree.Pairs, [2]string{acct, region})
		for _, g := range c.Gaps {
			tree.Gaps[acct+"/"+region+"/"+g] = true
		}
		for _, e := range c.Events {
			at, err := time.Parse("2006-01-02T15:04", e.Time)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			p := fixture.User(acct, "admin")
			if e.Details != nil {
				p = fixture.Principal{}
			}
			tree.Add(fixture.Event{Time: at, Name: e.Name, Account: acct, Region: region, Principal: p, KeyARN: arns[i],
				Request: e.Request, Response: e.Response, Details: e.Details, Additional: e.Additional})
		}
		if len(c.Inventory) > 0 && string(c.Inventory) != "null" {
			var entry map[string]any
			json.Unmarshal(c.Inventory, &entry)
			asOf := entry["as_of"]
			delete(entry, "as_of")
			entry["KeyMetadata"].(map[string]any)["Arn"] = arns[i]
			doc := map[string]any{"Inventory": map[string]any{"GeneratedAt": asOf, "Account": acct, "Region": region, "Keys": []any{entry}}}
			p := filepath.Join(dir, fmt.Sprintf("inventory-%02d.json", i))
			b, _ := json.Marshal(doc)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	logs, err := tree.Write(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := ingest.Run(ctx, st, append([]string{logs}, paths...), ingest.Options{})
	if err != nil || sum.FilesFailed > 0 {
		t.Fatalf("ingest: %v %+v", err, sum.Failed)
	}
	r, err := Build(ctx, st, Options{Scope: report.Scope{From: day(spec.Period[0]), To: day(spec.Period[1])},
		Policy: rules.Policy{RotationDays: spec.Policy.RotationDays, ImportMaxDays: spec.Policy.ImportMaxDays},
		Now:    func() time.Time { return genTime }, Generator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := exported(t, r)
	for i, c := range spec.Rows {
		t.Run(c.Row+" "+c.Name, func(t *testing.T) {
			k, ok := keys[arns[i]]
			if !ok {
				t.Fatalf("key %s not in the report", arns[i])
			}
			checkState(t, k, c.Want)
		})
	}
}

func checkState(t *testing.T, k Key, w stateWant) {
	t.Helper()
	eq := func(what, got, want string) {
		if want != "" && got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	date := func(tm time.Time) string { return report.FormatDate(tm) }
	eq("rotation_enabled", k.RotationEnabled, w.RotationEnabled)
	eq("pending_deletion", k.PendingDeletion, w.PendingDeletion)
	eq("state", k.State, w.State)
	eq("status", string(k.Status()), w.Status)
	eq("eligibility rule", k.Judgement.EligRule, w.EligibilityRule)
	eq("last_rotation", date(k.LastRotation), w.LastRotation)
	eq("last_rotation_type", k.LastRotationType, w.LastRotationType)
	eq("next_automatic_rotation", date(k.NextAutomaticRotation), w.NextAutomaticRotation)
	if w.RotationPeriodDays != 0 && k.RotationPeriodDays != w.RotationPeriodDays {
		t.Errorf("rotation period %d, want %d", k.RotationPeriodDays, w.RotationPeriodDays)
	}
	if w.MaterialAgeExact != nil && k.MaterialAgeExact != *w.MaterialAgeExact {
		t.Errorf("material age exact %v, want %v (age %v, at least %d)", k.MaterialAgeExact, *w.MaterialAgeExact, k.MaterialAgeDays, k.MaterialAgeMinDays)
	}
	if w.Rotations != nil && k.Rotations != *w.Rotations {
		t.Errorf("rotations %d, want %d", k.Rotations, *w.Rotations)
	}
	for id, rule := range w.Check {
		if c := check(k, id); c.Rule != rule {
			t.Errorf("check %s by %s (%s: %s), want %s", id, c.Rule, c.Status, c.Reason, rule)
		}
	}
	for id, part := range w.Reason {
		if c := check(k, id); !strings.Contains(c.Reason, part) {
			t.Errorf("check %s reason %q lacks %q", id, c.Reason, part)
		}
	}
	for fact, part := range w.Source {
		if !strings.Contains(k.Sources[fact], part) {
			t.Errorf("source of %s %q lacks %q (sources %v)", fact, k.Sources[fact], part, k.Sources)
		}
	}
	for _, id := range w.Flags {
		if flag(k, id) == nil {
			t.Errorf("flag %s missing (flags %+v)", id, k.Flags)
		}
	}
	for _, id := range w.NoFlags {
		if flag(k, id) != nil {
			t.Errorf("flag %s raised: %+v", id, *flag(k, id))
		}
	}
	for id, part := range w.FlagText {
		if f := flag(k, id); f == nil || !strings.Contains(f.Text, part) {
			t.Errorf("flag %s text lacks %q: %+v", id, part, f)
		}
	}
}
