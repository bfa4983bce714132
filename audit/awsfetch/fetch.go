// Package awsfetch pulls KMS events from AWS CloudTrail's LookupEvents API
// straight into the audit database, incrementally. The records go through
// the same ingest pipeline as files (audit/ingest), as lookup-events
// documents, so deduplication, provenance and coverage work unchanged.
//
// LookupEvents is throttled by AWS to 2 requests per second per account and
// region and returns at most 50 events per call and 90 days of history:
// calls are paced by a Limiter (every attempt, retries included), and
// ThrottlingException is retried by the SDK's standard retryer with its
// exponential backoff, slept on the same injectable Clock.
//
// Nothing here runs unless a person starts it (keyceremony audit fetch).
package awsfetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/keyceremony/keyceremony/audit/ingest"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/internal/awsapi"
)

const (
	// MaxHistory is how far back LookupEvents reaches.
	MaxHistory = 90 * 24 * time.Hour
	// PageSize is LookupEvents' maximum MaxResults.
	PageSize = 50
	// DefaultRate is CloudTrail's LookupEvents limit per account and region.
	DefaultRate = 2.0
	// DefaultLag: CloudTrail makes an event visible to LookupEvents
	// typically within 15 minutes of the call, so the last DefaultLag
	// before a fetch is fetched again next time (duplicates are dropped).
	DefaultLag = 15 * time.Minute
	// EventSource is the only source fetched.
	EventSource = "kms.amazonaws.com"
)

// Options of a fetch. The zero value fetches the last 90 days minus what
// is already loaded, with the real clock.
type Options struct {
	// Account and Region name the state the fetch resumes from. Region
	// defaults to the configuration's; Account to STS GetCallerIdentity.
	Account string
	// From and To bound the window (defaults: To now, From To minus 90
	// days; both are clamped to the last 90 days).
	From, To time.Time
	// Endpoint overrides the CloudTrail and STS endpoint (tests, VPC
	// endpoints).
	Endpoint string
	// Clock paces the calls and sleeps the backoff; nil is the wall clock.
	Clock Clock
	// Rate is LookupEvents calls per second (default 2).
	Rate float64
	// MaxAttempts per call, throttled retries included (default 10).
	MaxAttempts int
	// ChunkEvents: events are committed to the database in chunks of this
	// many (default 5000), so an interrupted fetch keeps what it got.
	ChunkEvents int
	// Lag: see DefaultLag.
	Lag time.Duration
	// Progress, if set, is called after every page and every commit.
	Progress func(Progress)
}

// Progress of a fetch.
type Progress struct {
	Account, Region string
	Pages           int
	Events          int64 // fetched from CloudTrail
	New, Duplicate  int64 // committed to the database
	Retries         int   // attempts retried (throttling, 5xx)
	Covered, Total  time.Duration
	Elapsed, ETA    time.Duration // ETA is 0 until something is covered
	Committing      bool
}

// Summary of a fetch.
type Summary struct {
	Account   string        `json:"account"`
	Region    string        `json:"region"`
	From      time.Time     `json:"from"`
	To        time.Time     `json:"to"`
	Clamped   bool          `json:"clamped_to_90_days,omitempty"`
	Windows   []Window      `json:"windows"` // what was fetched (the rest was already loaded)
	Pages     int           `json:"pages"`
	Events    int64         `json:"events"`
	New       int64         `json:"kms_events_new"`
	Duplicate int64         `json:"kms_events_duplicate"`
	Retries   int           `json:"retries"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Window is a time range fetched.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

type fetcher struct {
	opt       Options
	ct        *cloudtrail.Client
	st        *store.Store
	state     *stateDB
	clock     Clock
	start     time.Time
	complete  int64 // newest second that may be recorded as complete (now - lag)
	prog      Progress
	sum       *Summary
	coveredIn time.Duration // of gaps finished
	tmp       string
}

// Fetch loads the KMS events of cfg's account and region into st.
func Fetch(ctx context.Context, cfg aws.Config, st *store.Store, opt Options) (*Summary, error) {
	if opt.Clock == nil {
		opt.Clock = RealClock{}
	}
	if opt.Rate <= 0 {
		opt.Rate = DefaultRate
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 10
	}
	if opt.ChunkEvents <= 0 {
		opt.ChunkEvents = 5000
	}
	if opt.Lag <= 0 {
		opt.Lag = DefaultLag
	}
	region := cfg.Region
	if region == "" {
		return nil, errors.New("no AWS region: pass --region or set AWS_REGION")
	}
	endpoint := awsapi.Endpoint(opt.Endpoint)
	clock := opt.Clock
	lim := NewLimiter(opt.Rate, clock)
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = opt.MaxAttempts
			// Pacing is ours; the client-side retry quota would end a long
			// fetch after a burst of throttling.
			o.RateLimiter = ratelimit.None
			o.Backoff = clockBackoff{inner: retry.NewExponentialJitterBackoff(o.MaxBackoff), clock: clock}
		})
	}
	account := opt.Account
	if account == "" {
		s := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint; o.Retryer = retryer() })
		out, err := s.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, explain("find the account (sts:GetCallerIdentity)", err)
		}
		account = aws.ToString(out.Account)
	}
	ct := cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
		o.BaseEndpoint = endpoint
		o.Retryer = retryer()
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Insert(pace{lim}, "Retry", middleware.After)
		})
	})

	now := clock.Now().UTC().Truncate(time.Second)
	sum := &Summary{Account: account, Region: region, To: opt.To.UTC().Truncate(time.Second), From: opt.From.UTC().Truncate(time.Second)}
	if opt.To.IsZero() || sum.To.After(now) {
		sum.To = now
	}
	oldest := now.Add(-MaxHistory)
	if opt.From.IsZero() {
		sum.From = oldest
	} else if sum.From.Before(oldest) {
		sum.From, sum.Clamped = oldest, true
	}
	if !sum.From.Before(sum.To) {
		return nil, fmt.Errorf("empty time range %s .. %s (LookupEvents keeps 90 days: from %s)", sum.From.Format(time.RFC3339), sum.To.Format(time.RFC3339), oldest.Format(time.RFC3339))
	}
	state, err := openState(ctx, st.Path())
	if err != nil {
		return nil, err
	}
	defer state.Close()
	done, err := state.load(ctx, account, region)
	if err != nil {
		return nil, fmt.Errorf("read the fetch state: %w", err)
	}
	todo := gaps(sum.From.Unix(), sum.To.Unix(), done)
	tmp, err := os.MkdirTemp("", "keyceremony-fetch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	f := &fetcher{opt: opt, ct: ct, st: st, state: state, clock: clock, start: clock.Now(), sum: sum, tmp: tmp,
		complete: now.Add(-opt.Lag).Unix()}
	f.prog.Account, f.prog.Region = account, region
	for _, g := range todo {
		f.prog.Total += time.Duration(g.to-g.from+1) * time.Second
	}
	// Newest first: recent events are usually what a reviewer wants first.
	for i := len(todo) - 1; i >= 0; i-- {
		g := todo[i]
		sum.Windows = append(sum.Windows, Window{From: time.Unix(g.from, 0).UTC(), To: time.Unix(g.to, 0).UTC()})
		if err := f.gap(ctx, g); err != nil {
			f.finish()
			return sum, err
		}
		f.coveredIn += time.Duration(g.to-g.from+1) * time.Second
		f.report(f.coveredIn)
	}
	f.finish()
	return sum, nil
}

func (f *fetcher) finish() {
	f.sum.Pages, f.sum.Events, f.sum.New, f.sum.Duplicate, f.sum.Retries = f.prog.Pages, f.prog.Events, f.prog.New, f.prog.Duplicate, f.prog.Retries
	f.sum.Elapsed = f.clock.Now().Sub(f.start)
}

func (f *fetcher) report(covered time.Duration) {
	if f.opt.Progress == nil {
		return
	}
	f.prog.Covered = covered
	f.prog.Elapsed = f.clock.Now().Sub(f.start)
	f.prog.ETA = 0
	if covered > 0 && covered < f.prog.Total {
		f.prog.ETA = time.Duration(float64(f.prog.Elapsed) * float64(f.prog.Total-covered) / float64(covered))
	}
	f.opt.Progress(f.prog)
}

// gap fetches [g.from, g.to], newest first, committing in chunks and
// recording what is complete after each commit.
func (f *fetcher) gap(ctx context.Context, g span) error {
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String(EventSource)}},
		StartTime:        aws.Time(time.Unix(g.from, 0)),
		EndTime:          aws.Time(time.Unix(g.to, 0)),
		MaxResults:       aws.Int32(PageSize),
	}
	var chunk []types.Event
	oldest := g.to + 1 // the oldest eventTime seen so far in this gap
	// commit stores the chunk; then every second after the oldest event
	// seen is complete (LookupEvents returns newest first, so events of
	// the oldest second itself may still be on the next page).
	commit := func(through int64) error {
		if err := f.ingest(ctx, chunk); err != nil {
			return err
		}
		chunk = chunk[:0]
		hi := min(g.to, f.complete)
		if err := f.state.add(ctx, f.prog.Account, f.prog.Region, span{through, hi}, f.clock.Now()); err != nil {
			return fmt.Errorf("record the fetch state: %w", err)
		}
		return nil
	}
	for {
		out, err := f.ct.LookupEvents(ctx, in)
		if err != nil {
			// Keep what was fetched: the next run resumes below it.
			if len(chunk) > 0 {
				if cerr := commit(oldest + 1); cerr != nil {
					return errors.Join(explain("CloudTrail LookupEvents", err), cerr)
				}
			}
			return explain("CloudTrail LookupEvents", err)
		}
		f.prog.Pages++
		if res, ok := retry.GetAttemptResults(out.ResultMetadata); ok && len(res.Results) > 1 {
			f.prog.Retries += len(res.Results) - 1
		}
		for _, e := range out.Events {
			if e.CloudTrailEvent == nil {
				continue
			}
			chunk = append(chunk, e)
			f.prog.Events++
			if e.EventTime != nil {
				oldest = min(oldest, e.EventTime.Unix())
			}
		}
		f.report(f.coveredIn + time.Duration(g.to-max(oldest, g.from)+1)*time.Second)
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		if len(chunk) >= f.opt.ChunkEvents {
			if err := commit(oldest + 1); err != nil {
				return err
			}
		}
		in.NextToken = out.NextToken
	}
	return commit(g.from)
}

// lookupEvent is one entry of a lookup-events document as the AWS CLI
// writes it; the ingest reads CloudTrailEvent.
type lookupEvent struct {
	EventID         string `json:"EventId,omitempty"`
	EventName       string `json:"EventName,omitempty"`
	EventTime       string `json:"EventTime,omitempty"`
	EventSource     string `json:"EventSource,omitempty"`
	CloudTrailEvent string `json:"CloudTrailEvent"`
}

// ingest writes the chunk as a lookup-events document and loads it with
// the file pipeline. The file's name is the provenance kept in the database.
func (f *fetcher) ingest(ctx context.Context, chunk []types.Event) error {
	if len(chunk) == 0 {
		return nil
	}
	doc := struct {
		Events []lookupEvent `json:"Events"`
	}{Events: make([]lookupEvent, 0, len(chunk))}
	first, last := time.Time{}, time.Time{}
	for _, e := range chunk {
		le := lookupEvent{EventID: aws.ToString(e.EventId), EventName: aws.ToString(e.EventName), EventSource: aws.ToString(e.EventSource), CloudTrailEvent: *e.CloudTrailEvent}
		if e.EventTime != nil {
			t := e.EventTime.UTC()
			le.EventTime = t.Format(time.RFC3339)
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
		doc.Events = append(doc.Events, le)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("cloudtrail-lookup-events_%s_%s_%s_%s.json", f.prog.Account, f.prog.Region, first.Format("20060102T150405Z"), last.Format("20060102T150405Z"))
	path := filepath.Join(f.tmp, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	defer os.Remove(path)
	f.prog.Committing = true
	f.report(f.prog.Covered)
	s, err := ingest.Run(context.WithoutCancel(ctx), f.st, []string{path}, ingest.Options{Workers: 1,
		Args: []string{"audit", "fetch", "cloudtrail:LookupEvents", "account=" + f.prog.Account, "region=" + f.prog.Region,
			"from=" + first.Format(time.RFC3339), "to=" + last.Format(time.RFC3339)}})
	f.prog.Committing = false
	if err != nil {
		return fmt.Errorf("load fetched events: %w", err)
	}
	if s.FilesFailed > 0 && len(s.Failed) > 0 {
		return fmt.Errorf("load fetched events: %s", s.Failed[0].Error)
	}
	f.prog.New += s.KMSNew
	f.prog.Duplicate += s.KMSDuplicate
	if s.FilesDuplicate > 0 { // the very same document was loaded before
		f.prog.Duplicate += int64(len(chunk))
	}
	f.report(f.prog.Covered)
	return nil
}

// pace waits for the limiter before every attempt, retries included.
type pace struct{ l *Limiter }

func (pace) ID() string { return "KeyCeremonyPace" }

func (p pace) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	if err := p.l.Wait(ctx); err != nil {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, err
	}
	return next.HandleFinalize(ctx, in)
}

// clockBackoff computes the SDK's exponential jitter backoff and sleeps
// it on the injected clock (the SDK then sleeps zero).
type clockBackoff struct {
	inner retry.BackoffDelayer
	clock Clock
}

func (b clockBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	d, e := b.inner.BackoffDelay(attempt, err)
	if e != nil {
		return 0, e
	}
	b.clock.Sleep(context.Background(), d)
	return 0, nil
}

// lookupHints turn the error codes of LookupEvents and GetCallerIdentity
// into what the operator should do.
var lookupHints = map[string]string{
	"AccessDeniedException":       "the credentials lack cloudtrail:LookupEvents (or sts:GetCallerIdentity); check the IAM policy",
	"AccessDenied":                "the credentials lack permission; check the IAM policy",
	"ThrottlingException":         "AWS kept throttling after every retry; wait a few minutes and run the same command again: it resumes",
	"InvalidTimeRangeException":   "the time range is invalid (LookupEvents keeps 90 days)",
	"InvalidNextTokenException":   "the page token expired; run the same command again: it resumes",
	"UnrecognizedClientException": "the access key is not valid in this region",
}

func explain(what string, err error) error { return awsapi.Explain(what, err, lookupHints) }
