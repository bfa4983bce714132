package store

import "time"

// UnixDay is the UTC day of a Unix time, as DayKey counts days (floor
// division: a time before 1970 is on a negative day).
func UnixDay(t int64) int64 {
	d := t / 86400
	if t%86400 < 0 {
		d--
	}
	return d
}

func dayString(d int64) string { return time.Unix(d*86400, 0).UTC().Format("2006-01-02") }

// coverage adds the file to the per-day counts: the delivery day of its S3
// path counts one file; each record counts on its own eventTime day.
func (w *Writer) coverage(end FileEnd) error {
	type row struct{ files, records, kmsRecords, kmsEvents int }
	rows := map[[3]string]*row{}
	get := func(a, r, d string) *row {
		k := [3]string{a, r, d}
		if rows[k] == nil {
			rows[k] = &row{}
		}
		return rows[k]
	}
	if w.meta.Account != "" && w.meta.Region != "" && w.meta.Day != "" {
		get(w.meta.Account, w.meta.Region, w.meta.Day).files++
	}
	for k, c := range end.Days {
		r := get(k.Account, k.Region, dayString(k.Day))
		r.records += c.Records
		r.kmsRecords += c.KMSRecords
	}
	for k, pn := range w.newPerDay {
		n := *pn
		get(k.Account, k.Region, dayString(k.Day)).kmsEvents += n
	}
	for k, r := range rows {
		if _, err := w.covUpsert.ExecContext(w.ctx, k[0], k[1], k[2], r.files, r.records, r.kmsRecords, r.kmsEvents); err != nil {
			return err
		}
	}
	return nil
}
