package usage

type cnt struct{ calls, failed int64 }

// agg is one key's (or the keyless events') aggregation.
type agg struct {
	events, crypto, failed, off int64
	aggregated                  int64          // of events, counted from aggregates
	ops                         map[int64]*cnt // name id * 4 + role (1 from, 2 to)
	idents                      map[int32]*cnt
	svcs                        map[int64]*cnt
	accts                       map[string]*cnt
	errs                        map[int64]int64
	daily                       []DayCount // nil until the first cryptographic call (dayCount)
	days                        int
	firstUse, lastUse           int64
	lastUseRow                  int64
	crossFirst                  map[string]rowRef // caller account -> first event
}

// tally counts n calls of one operation (op: name id * 4 + ReEncrypt
// role) by one identity, called through service inv (0: none) from
// account acct, failed with error ec (0: none): the breakdowns that the
// pass over events (n = 1) and the aggregates (n = a group's events) feed
// alike.
func (a *agg) tally(op int64, idx int32, inv int64, acct string, ec, n int64) {
	failed := ec != 0
	a.events += n
	inc(a.ops, op, n, failed)
	inc(a.idents, idx, n, failed)
	if inv != 0 {
		inc(a.svcs, inv, n, failed)
	}
	inc(a.accts, acct, n, failed)
	if failed {
		a.failed += n
		a.errs[ec] += n
	}
}

func inc[K comparable](m map[K]*cnt, k K, n int64, failed bool) {
	c := m[k]
	if c == nil {
		c = &cnt{}
		m[k] = c
	}
	c.calls += n
	if failed {
		c.failed += n
	}
}

// rowRef is an event by (time, row id), the order of the report.
type rowRef struct{ t, id int64 }

func (r rowRef) before(o rowRef) bool { return r.t < o.t || r.t == o.t && r.id < o.id }

func newAgg(days int) *agg {
	return &agg{ops: map[int64]*cnt{}, idents: map[int32]*cnt{}, svcs: map[int64]*cnt{}, accts: map[string]*cnt{},
		errs: map[int64]int64{}, days: days, crossFirst: map[string]rowRef{}}
}

// dayCount is day di of the series, made at the first cryptographic call:
// most keys of a large account see none in a period (21 of 50,000 in the
// 10M-event benchmark), and a series each would hold 2.8 KiB of zeros for
// 90 days; they share one series of zeros instead (builder.zeros).
func (a *agg) dayCount(di int) *DayCount {
	if a.daily == nil {
		a.daily = make([]DayCount, a.days)
	}
	return &a.daily[di]
}
