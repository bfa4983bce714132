package store

import "context"

// DayCountsFromEvents is dayCountsFromEvents, for the tests of package store_test.
func (s *Store) DayCountsFromEvents(ctx context.Context, f Filter) ([]DayEvents, error) {
	return s.dayCountsFromEvents(ctx, f)
}
