package browse

// SeekSkip is how many rows fetching page k would pass over inside SQLite.
func (s *Source) SeekSkip(k int) int64 {
	r := int64(k) * int64(s.pageSize)
	var skip int64
	for _, pt := range s.pagePlan(r, min(int64(s.pageSize), s.total-r)) {
		skip += pt.skip
	}
	return skip
}
