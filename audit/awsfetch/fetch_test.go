package awsfetch_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyceremony/keyceremony/audit/awsfetch"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/awsfake"
)

// fakeClock advances only when slept on.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestLimiterPaces(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	l := awsfetch.NewLimiter(2, clk)
	for range 5 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The first call goes at once, then one every 500ms.
	if len(clk.sleeps) != 4 || l.Waited != 2*time.Second {
		t.Fatalf("sleeps %v waited %s", clk.sleeps, l.Waited)
	}
	for _, d := range clk.sleeps {
		if d != 500*time.Millisecond {
			t.Fatalf("sleeps %v", clk.sleeps)
		}
	}
	// After a pause longer than the interval, no wait; no burst is saved up.
	clk.advance(10 * time.Second)
	l.Wait(context.Background())
	l.Wait(context.Background())
	if len(clk.sleeps) != 5 || clk.sleeps[4] != 500*time.Millisecond {
		t.Fatalf("after a pause: %v", clk.sleeps)
	}
	// A cancelled context stops the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func setup(t *testing.T) (*awsfake.CloudTrail, aws.Config, *store.Store) {
	t.Helper()
	srv := awsfake.NewCloudTrail(t)
	cfg := srv.AWSConfig(srv.Region)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return srv, cfg, st
}

func TestFetchTenThousandWithThrottling(t *testing.T) {
	srv, cfg, st := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	srv.AddKMSEvents(10000, now.Add(-30*24*time.Hour), now.Add(-time.Hour))
	srv.ThrottleEvery = 7
	// A burst of three in a row at the start as well.
	for range 3 {
		srv.FailNext("LookupEvents", awsfake.APIError{Status: 400, Type: "ThrottlingException", Message: "Rate exceeded"})
	}
	clk := &fakeClock{now: now}
	var progs []awsfetch.Progress
	opt := awsfetch.Options{Endpoint: srv.URL, Clock: clk, ChunkEvents: 2000, Progress: func(p awsfetch.Progress) { progs = append(progs, p) }}
	sum, err := awsfetch.Fetch(ctx, cfg, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Account != srv.Account || sum.Region != "eu-west-1" {
		t.Errorf("account/region %s/%s", sum.Account, sum.Region)
	}
	if sum.Events != 10000 || sum.New != 10000 || sum.Duplicate != 0 || sum.Pages != 200 {
		t.Errorf("summary %+v", sum)
	}
	if n, _ := st.CountEvents(ctx, store.Filter{}); n != 10000 {
		t.Fatalf("stored %d events, want 10000", n)
	}
	calls := srv.Calls("LookupEvents")
	throttled := calls - 200
	if throttled < 30 || sum.Retries != throttled {
		t.Errorf("calls %d, retries %d", calls, sum.Retries)
	}
	// Paced at 2 per second on the clock, retries included: the virtual
	// time spent is at least one interval per call after the first, plus
	// the SDK's backoff for each throttled attempt.
	if min := time.Duration(calls-1) * 500 * time.Millisecond; sum.Elapsed < min {
		t.Errorf("elapsed %s on the clock for %d calls, want at least %s", sum.Elapsed, calls, min)
	}
	// Every request: signed, the CloudTrail target, KMS only, 50 per page.
	for _, r := range srv.Requests {
		if r.Operation == "GetCallerIdentity" {
			continue
		}
		var in struct {
			LookupAttributes []struct{ AttributeKey, AttributeValue string }
			MaxResults       int
			StartTime        float64
		}
		json.Unmarshal(r.Body, &in)
		if r.Header.Get("X-Amz-Target") != "CloudTrail_20131101.LookupEvents" || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") ||
			len(in.LookupAttributes) != 1 || in.LookupAttributes[0].AttributeKey != "EventSource" || in.LookupAttributes[0].AttributeValue != "kms.amazonaws.com" ||
			in.MaxResults != 50 || in.StartTime < float64(now.Add(-awsfetch.MaxHistory).Unix()) {
			t.Fatalf("request %s %s: %s", r.Operation, r.Header.Get("X-Amz-Target"), r.Body)
		}
	}
	// Progress: after every page, covering the window, with an ETA.
	last := progs[len(progs)-1]
	if last.Pages != 200 || last.New != 10000 || last.Covered != last.Total {
		t.Errorf("last progress %+v", last)
	}
	sawETA := false
	for _, p := range progs {
		sawETA = sawETA || (p.ETA > 0 && p.Covered < p.Total)
	}
	if !sawETA {
		t.Error("no ETA reported")
	}
	// The records went through the ingest: provenance kept.
	files, _ := st.Files(ctx)
	if len(files) != 5 || files[0].Format != "lookup-events" {
		t.Errorf("files %+v", files)
	}

	// A rerun fetches only the last minutes (CloudTrail's delivery lag)
	// and loads nothing new.
	clk.advance(time.Minute)
	before := srv.Calls("LookupEvents")
	sum2, err := awsfetch.Fetch(ctx, cfg, st, awsfetch.Options{Endpoint: srv.URL, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if sum2.New != 0 || len(sum2.Windows) != 1 || sum2.Windows[0].From.Before(now.Add(-awsfetch.DefaultLag)) {
		t.Errorf("rerun %+v", sum2)
	}
	if n, _ := st.CountEvents(ctx, store.Filter{}); n != 10000 {
		t.Fatalf("after the rerun: %d events", n)
	}
	if got := srv.Calls("LookupEvents") - before; got > 2 {
		t.Errorf("rerun made %d calls", got)
	}
	// New events since are picked up.
	srv.AddKMSEvents(30, clk.Now().Add(-5*time.Minute), clk.Now())
	clk.advance(time.Minute)
	sum3, err := awsfetch.Fetch(ctx, cfg, st, awsfetch.Options{Endpoint: srv.URL, Clock: clk})
	if err != nil || sum3.New != 30 {
		t.Fatalf("new events: %+v %v", sum3, err)
	}
}

func TestFetchResumesAfterFailure(t *testing.T) {
	srv, cfg, st := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	srv.AddKMSEvents(5000, now.Add(-10*24*time.Hour), now.Add(-2*time.Hour))
	clk := &fakeClock{now: now}
	failed := false
	opt := awsfetch.Options{Endpoint: srv.URL, Clock: clk, ChunkEvents: 1000, Progress: func(p awsfetch.Progress) {
		if p.Pages == 45 && !failed {
			failed = true
			srv.FailNext("LookupEvents", awsfake.APIError{Status: 400, Type: "AccessDeniedException", Message: "User is not authorized to perform: cloudtrail:LookupEvents"})
		}
	}}
	sum, err := awsfetch.Fetch(ctx, cfg, st, opt)
	if err == nil || !strings.Contains(err.Error(), "lack cloudtrail:LookupEvents") {
		t.Fatalf("want AccessDenied explained, got %v", err)
	}
	// What was fetched before the failure is kept.
	if sum.New != 45*50 {
		t.Errorf("first run loaded %d", sum.New)
	}
	opt.Progress = nil
	calls := srv.Calls("LookupEvents")
	sum2, err := awsfetch.Fetch(ctx, cfg, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("calls %d pages %d retries %d", srv.Calls("LookupEvents")-calls, sum2.Pages, sum2.Retries)
	if n, _ := st.CountEvents(ctx, store.Filter{}); n != 5000 {
		t.Fatalf("stored %d", n)
	}
	// The resumed run fetched only below what was kept (plus its oldest second).
	if sum2.New != 5000-45*50 || sum2.Pages > 57 {
		t.Errorf("resume %+v", sum2)
	}
}

func TestFetchRefusals(t *testing.T) {
	srv, cfg, st := setup(t)
	clk := &fakeClock{now: time.Now()}
	_, err := awsfetch.Fetch(context.Background(), cfg, st, awsfetch.Options{Endpoint: srv.URL, Clock: clk,
		From: clk.now.Add(-200 * 24 * time.Hour), To: clk.now.Add(-100 * 24 * time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "90 days") {
		t.Errorf("range older than 90 days: %v", err)
	}
	// Throttled beyond every retry: a clear message, resumable.
	for range 3 {
		srv.FailNext("LookupEvents", awsfake.APIError{Status: 400, Type: "ThrottlingException", Message: "Rate exceeded"})
	}
	_, err = awsfetch.Fetch(context.Background(), cfg, st, awsfetch.Options{Endpoint: srv.URL, Clock: clk, MaxAttempts: 3})
	if err == nil || !strings.Contains(err.Error(), "resumes") {
		t.Errorf("throttled: %v", err)
	}
}
