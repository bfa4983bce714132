package keyprov

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// The scenario's database (audit/report/fixture: hand-written CloudTrail
// records and ceremony directories, loaded by the real ingest and ceremony
// loader into a real SQLite file) is the ground truth the tests below
// state their figures against.

func june() report.Scope {
	return report.Scope{From: fixture.ProvPeriodStart, To: fixture.ProvPeriodEnd}
}

func build(t *testing.T, st *store.Store, sc report.Scope) *Report {
	t.Helper()
	r, err := Build(context.Background(), st, Options{Scope: sc, Now: func() time.Time { return fixture.ProvPeriodEnd }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// finalHash is a ceremony's final hash as its transcript states it.
func finalHash(t *testing.T, p *fixture.Provenance, name string) string {
	t.Helper()
	rep, err := transcript.Verify(p.Transcripts[name])
	if err != nil {
		t.Fatal(err)
	}
	f, ok := rep.Final()
	if !ok {
		t.Fatalf("%s is incomplete", name)
	}
	return f.Hash
}

func arns(ss []Section) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ARN)
	}
	return out
}

func section(t *testing.T, ss []Section, arn string) *Section {
	t.Helper()
	for i := range ss {
		if ss[i].ARN == arn {
			return &ss[i]
		}
	}
	t.Fatalf("no section for %s among %v", arn, arns(ss))
	return nil
}

func whats(s *Section) string {
	var w []string
	for _, it := range s.Timeline {
		w = append(w, it.What)
	}
	return strings.Join(w, " | ")
}

func findingIDs(fs []provenance.Finding) string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return strings.Join(ids, " ")
}

// Every section, timeline, verdict and usage total of June, and the CSV
// laid out row for row from the same model.
func TestKeyProvenanceScenario(t *testing.T) {
	st, p := fixture.BuildProvenance(t)
	r := build(t, st, june())
	traced, rogue, waiting := p.Keys["traced"], p.Keys["rogue"], p.Keys["waiting"]
	if got, want := strings.Join(arns(r.Keys), " "), waiting+" "+traced+" "+rogue; got != want {
		t.Fatalf("key sections %s, want %s", got, want)
	}
	if got := arns(r.CAs); len(got) != 1 || got[0] != p.CA {
		t.Fatalf("CA sections %v", got)
	}
	h1, h2, hw, hc := finalHash(t, p, "traced-1"), finalHash(t, p, "traced-2"), finalHash(t, p, "waiting-1"), finalHash(t, p, "ca-1")

	s := section(t, r.Keys, traced)
	if want := "CreateKey | GetParametersForImport | byok-wrap ceremony kms-traced-1 | ImportKeyMaterial | GetParametersForImport | " +
		"byok-wrap ceremony kms-traced-2 | ImportKeyMaterial | RotateKeyOnDemand"; whats(s) != want {
		t.Errorf("traced timeline:\n%s\nwant\n%s", whats(s), want)
	}
	if s.Verdict != "every import (2) traced to a witnessed ceremony" || s.UsageCalls != 4 || s.UsageFailed != 1 || len(s.Findings) != 0 || len(s.Gaps) != 0 {
		t.Errorf("traced: verdict %q, usage %d/%d, findings %s, gaps %v", s.Verdict, s.UsageCalls, s.UsageFailed, findingIDs(s.Findings), s.Gaps)
	}
	imp1, cer1 := s.Timeline[3], s.Timeline[2]
	if imp1.EventID != p.IDs["traced.import1"] || imp1.Status != "matched" || imp1.FinalHash != h1 || s.Timeline[6].FinalHash != h2 {
		t.Errorf("imports: %+v / %+v", imp1, s.Timeline[6])
	}
	b1, _ := hex.DecodeString(h1)
	if cer1.Kind != "ceremony" || cer1.FinalHash != h1 || cer1.Status != "imported" || !strings.Contains(cer1.Detail, "Alice Adams (administrator), Wendy Webb (witness), Carol Chen (custodian)") ||
		!strings.Contains(cer1.Detail, words.String(b1)) || !cer1.Time.Equal(time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("ceremony row %+v", cer1)
	}
	c, ok := r.Ceremony(h1)
	if !ok || c.CeremonyID != "kms-traced-1" || c.FinalWords != words.String(b1) || c.Transcript != p.Transcripts["traced-1"] {
		t.Fatalf("ceremony record %+v", c)
	}
	produced := map[string]string{}
	for _, kv := range c.Produced {
		produced[kv[0]] = kv[1]
	}
	if produced["ParametersValidTo"] != "2025-06-03 09:10:00Z" || produced["Expiration"] != "KEY_MATERIAL_EXPIRES 2026-06-01 00:00:00Z" || produced["KMS key"] != traced {
		t.Errorf("produced %v", produced)
	}
	if _, ok := r.Ceremony(strings.Repeat("0", 64)); ok {
		t.Error("a ceremony found for an unknown hash")
	}

	s = section(t, r.Keys, rogue)
	if s.Verdict != "1 of 1 import(s) NOT traced to a witnessed ceremony (unmatched)" || findingIDs(s.Findings) != "import-without-ceremony imported-material-deleted" {
		t.Errorf("rogue: %q, findings %s", s.Verdict, findingIDs(s.Findings))
	}
	s = section(t, r.Keys, waiting)
	if s.Timeline[2].FinalHash != hw || s.Timeline[2].Status != "not in the logs" || findingIDs(s.Findings) != "ceremony-without-import" {
		t.Errorf("waiting: %+v, findings %s", s.Timeline[2], findingIDs(s.Findings))
	}
	s = section(t, r.CAs, p.CA)
	if want := "GetCertificateAuthorityCsr | ca-signing ceremony issuing-ca-1 | ImportCertificateAuthorityCertificate"; whats(s) != want ||
		s.Timeline[2].Status != "matched" || s.Timeline[2].FinalHash != hc || s.Verdict != "every CA certificate installation (1) traced to a witnessed ca-signing ceremony" {
		t.Errorf("CA: %s, %+v, %q", whats(s), s.Timeline[2], s.Verdict)
	}
	if sm := r.Summary; sm.Imports[provenance.Matched] != 2 || sm.Imports[provenance.Unmatched] != 1 || sm.CAImports[provenance.Matched] != 1 || sm.Ceremonies != 4 {
		t.Errorf("summary %+v", sm)
	}

	// The CSV: the header, then every timeline row of the keys and the CAs
	// in the sections' order, then the findings by time.
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "resource,resource_type,time,kind,what,status,event_id,final_hash,principal,error,detail,verdict" {
		t.Fatalf("CSV header %v", rows[0])
	}
	timeline := 0
	for _, s := range append(append([]Section{}, r.Keys...), r.CAs...) {
		timeline += len(s.Timeline)
	}
	if len(rows) != 1+timeline+len(r.Findings) || timeline != 18 || len(r.Findings) != 3 {
		t.Fatalf("%d CSV rows for %d timeline items and %d findings", len(rows), timeline, len(r.Findings))
	}
	want := map[int][]string{
		7: {traced, "kms-key", "2025-06-02T15:00:00Z", "event", "ImportKeyMaterial", "matched", p.IDs["traced.import1"], h1,
			"arn:aws:iam::111122223333:user/security-officer", "", "KEY_MATERIAL_EXPIRES, validTo 2026-06-01 00:00:00Z, key material mat-t1; from ceremony kms-traced-1",
			"every import (2) traced to a witnessed ceremony"},
		12: {rogue, "kms-key", "2025-06-09T08:00:00Z", "event", "CreateKey", "", p.IDs["rogue.create"], "", "arn:aws:iam::111122223333:user/mallory", "",
			"origin EXTERNAL, SYMMETRIC_DEFAULT", "1 of 1 import(s) NOT traced to a witnessed ceremony (unmatched)"},
		18: {p.CA, "private-ca", "2025-06-04T13:00:00Z", "event", "ImportCertificateAuthorityCertificate", "matched", p.IDs["ca.install"], hc,
			"arn:aws:iam::111122223333:user/security-officer", "", "from ceremony issuing-ca-1", "every CA certificate installation (1) traced to a witnessed ca-signing ceremony"},
		19: {rogue, "finding", "2025-06-09T08:20:00Z", "finding", "import-without-ceremony", "high", p.IDs["rogue.import"], "", "", "",
			"Key material was imported at 2025-06-09T08:20:00Z by arn:aws:iam::111122223333:user/mallory with no ceremony record.", ""},
		20: {waiting, "finding", "2025-06-09T10:04:00Z", "finding", "ceremony-without-import", "medium", "", hw, "", "",
			"Ceremony kms-waiting-1 wrapped material for this key; no import appears, but the logs between the ceremony and the parameters' expiry (2025-06-10T09:00:00Z) are incomplete: ingest them.", ""},
	}
	for i, w := range want {
		if got := rows[i]; strings.Join(got, "\x00") != strings.Join(w, "\x00") {
			t.Errorf("CSV row %d:\n got %q\nwant %q", i, got, w)
		}
	}
	// The JSON is the same model.
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Keys) != 3 || len(back.CAs) != 1 || len(back.Findings) != 3 || back.Keys[1].Timeline[3].FinalHash != h1 {
		t.Errorf("JSON: %v", err)
	}
}

// The account, region and key filters choose the sections (and the
// findings); the period cuts the timelines, the ceremonies and the usage.
func TestKeyProvenanceScopeFilters(t *testing.T) {
	st, p := fixture.BuildProvenance(t)
	traced, rogue, waiting := p.Keys["traced"], p.Keys["rogue"], p.Keys["waiting"]
	for _, tc := range []struct {
		name           string
		sc             report.Scope
		keys, cas      string
		findings       string
		tracedTimeline string
	}{
		{"account A2", report.Scope{Account: fixture.A2}, waiting, "", "ceremony-without-import", ""},
		{"region us-east-1", report.Scope{Region: fixture.R1}, traced + " " + rogue, p.CA, "import-without-ceremony imported-material-deleted", ""},
		{"a key by its id", report.Scope{KeyARN: "2b2b2b2b-2b2b-4b2b-8b2b-2b2b2b2b2b2b"}, rogue, "", "import-without-ceremony imported-material-deleted", ""},
		{"the CA by its ARN", report.Scope{KeyARN: p.CA}, "", p.CA, "", ""},
		{"account and region that do not meet", report.Scope{Account: fixture.A2, Region: fixture.R1}, "", "", "", ""},
		{"a period ending before the second ceremony", report.Scope{From: fixture.ProvLogStart, To: time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC), KeyARN: traced},
			traced, "", "", "CreateKey | GetParametersForImport | byok-wrap ceremony kms-traced-1 | ImportKeyMaterial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.sc
			if sc.From.IsZero() {
				sc.From, sc.To = fixture.ProvPeriodStart, fixture.ProvPeriodEnd
			}
			r := build(t, st, sc)
			if got := strings.Join(arns(r.Keys), " "); got != tc.keys {
				t.Errorf("keys %q, want %q", got, tc.keys)
			}
			if got := strings.Join(arns(r.CAs), " "); got != tc.cas {
				t.Errorf("CAs %q, want %q", got, tc.cas)
			}
			if got := findingIDs(r.Findings); got != tc.findings {
				t.Errorf("findings %q, want %q", got, tc.findings)
			}
			for _, f := range r.Findings {
				if !strings.Contains(tc.keys+" "+tc.cas, f.Resource) {
					t.Errorf("finding %s on %s, out of scope", f.ID, f.Resource)
				}
			}
			if tc.tracedTimeline != "" {
				s := section(t, r.Keys, traced)
				if whats(s) != tc.tracedTimeline {
					t.Errorf("timeline %s", whats(s))
				}
				// Five calls from 2025-05-26 (one in May) to 2025-06-10, one refused.
				if s.UsageCalls != 5 || s.UsageFailed != 1 || len(r.Ceremonies) != 1 {
					t.Errorf("usage %d/%d, %d ceremonies", s.UsageCalls, s.UsageFailed, len(r.Ceremonies))
				}
			}
		})
	}
}

// The gap in A2's logs is stated on the cover, in the waiting key's
// section and in its finding, in the same words in the PDF as in the model.
func TestKeyProvenanceCoverageGapWording(t *testing.T) {
	st, p := fixture.BuildProvenance(t)
	r := build(t, st, june())
	statement := "incomplete: KMS evidence is missing or partial for 2 account/region day(s) of the period (0 partial), in 1 span(s); what happened then is unknown"
	if r.Meta.Coverage.Statement != statement || r.Meta.Coverage.Pairs != 2 {
		t.Errorf("coverage %+v", r.Meta.Coverage)
	}
	gap := "444455556666/eu-west-1 2025-06-10 to 2025-06-11 (2 day(s)): no CloudTrail logs; KMS evidence for this span is missing"
	if len(r.Coverage) != 1 || r.Coverage[0].Describe() != gap {
		t.Fatalf("gaps %+v", r.Coverage)
	}
	w := section(t, r.Keys, p.Keys["waiting"])
	if len(w.Gaps) != 1 || w.Gaps[0].Describe() != gap || !strings.Contains(w.Findings[0].Text, "are incomplete: ingest them") {
		t.Errorf("waiting: gaps %+v, finding %q", w.Gaps, w.Findings[0].Text)
	}
	for _, s := range []string{p.Keys["traced"], p.Keys["rogue"]} {
		if g := section(t, r.Keys, s).Gaps; len(g) != 0 {
			t.Errorf("%s has gaps %v although A1's logs are complete", s, g)
		}
	}
	// Account A1 alone is complete.
	a1 := june()
	a1.Account = fixture.A1
	if v := build(t, st, a1).Meta.Coverage.Statement; v != "complete: every day of the period has KMS events for all 1 account/region pair(s) in scope, none partial" {
		t.Errorf("A1: %s", v)
	}
	pdf := filepath.Join(t.TempDir(), "p.pdf")
	var buf bytes.Buffer
	if err := r.WritePDF(&buf); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pdf, buf.Bytes(), 0o600)
	text := strings.Join(strings.Fields(fixture.PDFText(t, pdf)), " ")
	for _, want := range []string{statement, "Coverage gaps " + gap, "are incomplete: ingest them"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF lacks %q", want)
		}
	}
}

// The whole period the database knows runs from the first record's day to
// the day after now; a timeline event's record is found for KMS and
// Private CA events alike.
func TestWholePeriodAndRecords(t *testing.T) {
	st, p := fixture.BuildProvenance(t)
	ctx := context.Background()
	now := time.Date(2025, 7, 3, 15, 0, 0, 0, time.UTC)
	from, to, err := WholePeriod(ctx, st, now)
	if err != nil || !from.Equal(fixture.ProvLogStart) || !to.Equal(time.Date(2025, 7, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("whole period %s to %s (%v)", from, to, err)
	}
	// A clock behind the logs still covers them.
	if _, to, _ := WholePeriod(ctx, st, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)); !to.Equal(fixture.ProvLogEnd) {
		t.Errorf("with an early clock: to %s", to)
	}
	empty, err := store.Open(ctx, filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if from, to, err := WholePeriod(ctx, empty, now); err != nil || !from.Equal(time.Date(2025, 7, 3, 0, 0, 0, 0, time.UTC)) || !to.Equal(from.AddDate(0, 0, 1)) {
		t.Errorf("empty database: %s to %s (%v)", from, to, err)
	}
	for _, label := range []string{"traced.import1", "ca.install"} {
		raw, err := Record(ctx, st, p.IDs[label])
		if err != nil || !bytes.Contains(raw, []byte(`"eventID":"`+p.IDs[label]+`"`)) {
			t.Errorf("%s: %v %s", label, err, raw)
		}
	}
	if _, err := Record(ctx, st, "00000000-0000-4000-8000-999999999999"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("an unknown event: %v", err)
	}
}
