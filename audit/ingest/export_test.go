package ingest

import (
	"bytes"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/test/cloudtrailgen"
)

// TestExportFollowsTheListing: the streamed export holds, in order, the
// original record of each event the listing pages through oldest first,
// byte for byte, for a filter of one index branch and for filters of
// several (a key is the first or the second key of a call; an alias).
func TestExportFollowsTheListing(t *testing.T) {
	tree, _ := generate(t, cloudtrailgen.Config{KMSEvents: 4000, Days: 3, FileInterval: 2 * time.Hour})
	st := openStore(t)
	run(t, st, []string{tree}, Options{})
	var keyARN string
	st.DB().QueryRow(`SELECT k.arn FROM events e JOIN keys k ON k.id = e.key2 GROUP BY e.key2 ORDER BY count(*) DESC LIMIT 1`).Scan(&keyARN)
	day := cloudtrailgen.Config{}.Defaults().Start.Add(24 * time.Hour)
	for _, f := range []store.Filter{{}, {From: day, To: day.Add(12 * time.Hour), EventName: "Decrypt"}, {KeyARN: keyARN}, {Alias: "alias/rotating"}} {
		var want bytes.Buffer
		want.WriteString("{\"Records\":[\n")
		var cur *store.Cursor
		n := 0
		for {
			pg, err := st.Events(bg, f, store.Oldest, cur, 500)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range pg.Events {
				raw, err := st.RawByRowID(bg, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					want.WriteString(",\n")
				}
				want.Write(raw)
				n++
			}
			if pg.Next == nil {
				break
			}
			cur = pg.Next
		}
		want.WriteString("\n]}\n")
		if n < 10 {
			t.Fatalf("%+v: %d events, too few to compare", f, n)
		}
		var got bytes.Buffer
		if m, err := st.ExportRaw(bg, f, &got); err != nil || m != n {
			t.Fatalf("%+v: exported %d (%v), the listing has %d", f, m, err, n)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%+v: the export differs from the listing's records", f)
		}
	}
}
