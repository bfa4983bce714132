package report_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyceremony/keyceremony/audit/athena"
	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/report/fixture"
	"github.com/keyceremony/keyceremony/audit/report/rotation"
	"github.com/keyceremony/keyceremony/audit/report/usage"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/awsfake"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// Reports over aggregate-only data (Athena aggregates, no event in the
// database): the usage figures equal those of the same trail loaded from
// its files, and both PDFs say on the cover, and in the sections that would
// cite events, that there is no per-event evidence.
func TestReportsOverAggregateOnlyData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	sc := report.Scope{From: start, To: start.AddDate(0, 0, 4)}
	if _, err := cloudtrailgen.Generate(filepath.Join(dir, "trail"), cloudtrailgen.Config{Seed: 11, KMSEvents: 3000, Start: start, Days: 4,
		FileInterval: 6 * time.Hour, DupRatio: 0.2, ErrorRatio: 0.05, NoGaps: true}); err != nil {
		t.Fatal(err)
	}
	open := func(name string) *store.Store {
		st, err := store.Open(ctx, filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	files := open("files.db")
	if _, err := ingest.Run(ctx, files, []string{filepath.Join(dir, "trail")}, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	srv := awsfake.NewAthena(t)
	if _, err := srv.LoadTree("trails", "org_trail", filepath.Join(dir, "trail")); err != nil {
		t.Fatal(err)
	}
	pool := srv.CertPool()
	client := athena.NewClient(aws.Config{Region: "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		})}, srv.URL)
	agg := open("aggregates.db")
	sum, err := athena.Run(ctx, client, agg, athena.Options{Database: "trails", Table: "org_trail", OutputLocation: "s3://results/",
		From: sc.From, To: sc.To, Aggregate: true, Sleep: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}

	now := func() time.Time { return start.AddDate(0, 1, 0) }
	want, err := usage.Build(ctx, files, usage.Options{Scope: sc, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	got, err := usage.Build(ctx, agg, usage.Options{Scope: sc, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	g, w := got.Totals, want.Totals
	if g.Events != w.Events || g.CryptoCalls != w.CryptoCalls || g.Failed != w.Failed || g.AdminEvents != w.AdminEvents ||
		g.AggregatedEvents != g.Events || g.Events != sum.Events || g.OffHours != 0 || len(got.Coverage) != 0 {
		t.Fatalf("totals from aggregates %+v, from the files %+v (coverage gaps %v)", g, w, got.Coverage)
	}
	for i := range want.Daily {
		if got.Daily[i] != want.Daily[i] {
			t.Fatalf("day %d: %+v from aggregates, %+v from the files", i, got.Daily[i], want.Daily[i])
		}
	}
	// Per key too: ReEncrypt counts for its source and its destination, and
	// a call that named its key only by an alias, without resources (the
	// generator's denied Decrypts through alias/rotating), for the key the
	// alias history says, as from the files.
	var aliasOnly int64
	if err := files.DB().QueryRow(`SELECT count(*) FROM events WHERE key_source = 4 AND time >= ? AND time < ?`,
		sc.From.Unix(), sc.To.Unix()).Scan(&aliasOnly); err != nil || aliasOnly == 0 {
		t.Fatalf("the trail has %d calls resolved through an alias (%v): the test needs some", aliasOnly, err)
	}
	if got.NoKey.Events != want.NoKey.Events {
		t.Errorf("events naming no key: %d from aggregates, %d from the files", got.NoKey.Events, want.NoKey.Events)
	}
	gotKeys := map[string]usage.Key{}
	for _, k := range got.Keys {
		gotKeys[k.ARN] = k
	}
	reTo := 0
	for _, k := range want.Keys {
		g := gotKeys[k.ARN]
		if g.Events != k.Events || g.CryptoCalls != k.CryptoCalls || g.Failed != k.Failed || !reflect.DeepEqual(g.Operations, k.Operations) {
			t.Errorf("key %s from aggregates: %d events, %d crypto, %d failed, %v; from the files: %d, %d, %d, %v",
				k.ARN, g.Events, g.CryptoCalls, g.Failed, g.Operations, k.Events, k.CryptoCalls, k.Failed, k.Operations)
		}
		for _, op := range k.Operations {
			if op.Name == "ReEncryptTo" {
				reTo++
			}
		}
	}
	if len(got.Keys) != len(want.Keys) || reTo == 0 {
		t.Errorf("%d keys from aggregates, %d from the files; %d keys received ReEncrypt calls", len(got.Keys), len(want.Keys), reTo)
	}
	aggAdmin := 0
	for _, a := range got.Admin {
		if !a.FromAggregates || a.EventID != "" || a.Count < 1 {
			t.Fatalf("administrative event from aggregates: %+v", a)
		}
		aggAdmin++
	}
	if aggAdmin == 0 {
		t.Fatal("no administrative event in the aggregates")
	}

	text := func(write func(p string) error) string {
		p := filepath.Join(t.TempDir(), "r.pdf")
		if err := write(p); err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(fixture.PDFText(t, p)), " ")
	}
	ut := text(func(p string) error { return report.WriteFile(p, false, got.WritePDF) })
	for _, s := range []string{
		"This report rests on aggregate-only data",
		"Aggregates (no per-event evidence)",
		"events in scope are counted from aggregates",
		"Of the events, counted from aggregates",
		"come from aggregates: a count of events on a day",
		"aggregate: no event id",
		"were counted from aggregates: they have no event id",
		// Mono cells wrap long values: their beginnings are on one line.
		"Appendix: aggregate sources", sum.QueryID[:20], sum.ResultSHA[:24],
	} {
		if !strings.Contains(ut, s) {
			t.Errorf("usage PDF lacks %q", s)
		}
	}
	rot, err := rotation.Build(ctx, agg, rotation.Options{Scope: sc, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rot.Keys) == 0 || len(rot.Coverage) == 0 || rot.Coverage[0].Kind != report.GapAggregates {
		t.Fatalf("rotation over aggregates: %d keys, gaps %+v", len(rot.Keys), rot.Coverage)
	}
	rt := text(func(p string) error { return report.WriteFile(p, false, rot.WritePDF) })
	for _, s := range []string{
		"This report rests on aggregate-only data",
		"Aggregates cannot show a key's lifecycle",
		"aggregates only: counts, no per-event records",
		"Appendix: aggregate sources", sum.QueryID[:20],
	} {
		if !strings.Contains(rt, s) {
			t.Errorf("rotation PDF lacks %q", s)
		}
	}
	// The same trail from its files says nothing of aggregates.
	if ft := text(func(p string) error { return report.WriteFile(p, false, want.WritePDF) }); strings.Contains(ft, "aggregate") {
		t.Error("a report from files mentions aggregates")
	}
}
