package awsfetch

import (
	"context"
	"sync"
	"time"
)

// Clock is the time source of the pacing and of the retry backoff. The
// real one sleeps; tests inject one that advances virtual time, so pacing
// is tested without waiting.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Limiter spaces calls at least Interval apart (2 per second for
// LookupEvents: Interval 500ms). It holds no burst: CloudTrail's limit is
// per account and region, and other tools may be spending it too.
type Limiter struct {
	Interval time.Duration
	Clock    Clock

	mu   sync.Mutex
	next time.Time
	// Waited is the total time spent waiting, for tests and progress.
	Waited time.Duration
}

// NewLimiter allows perSecond calls per second on clock.
func NewLimiter(perSecond float64, clock Clock) *Limiter {
	if clock == nil {
		clock = RealClock{}
	}
	return &Limiter{Interval: time.Duration(float64(time.Second) / perSecond), Clock: clock}
}

// Wait blocks until the next call may go.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Clock.Now()
	if now.Before(l.next) {
		d := l.next.Sub(now)
		if err := l.Clock.Sleep(ctx, d); err != nil {
			return err
		}
		l.Waited += d
		now = l.Clock.Now()
		if now.Before(l.next) { // a clock that slept short
			now = l.next
		}
	}
	l.next = now.Add(l.Interval)
	return nil
}
