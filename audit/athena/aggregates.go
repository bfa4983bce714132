package athena

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/keyceremony/keyceremony/audit/cloudtrail"
	"github.com/keyceremony/keyceremony/audit/store"
)

// aggregates stores the result's groups.
func (r *runner) aggregates(ctx context.Context, st *store.Store, q string, started, finished time.Time) error {
	cols := append(append([][2]string{}, aggCols...), aggMeasures...)
	var rows []store.Aggregate
	err := r.rows(ctx, names(cols), func(v []*string) error {
		day, account, region, name := str(v[0]), str(v[1]), str(v[2]), str(v[3])
		if len(day) != 10 || name == "" {
			return fmt.Errorf("Athena query %s: a group without a day or event name (day %q, event %q)", r.sum.QueryID, day, name)
		}
		a := store.Aggregate{Day: day, Account: account, Region: region, Name: name,
			Category: cloudtrail.CategoryOf(name, str(v[4])), PrincipalType: str(v[7]), PrincipalAccount: str(v[8]),
			RoleARN: str(v[9]), InvokedBy: str(v[10]), ErrorCode: str(v[11])}
		a.PrincipalARN = str(v[6])
		key, alias := cloudtrail.KeyRef(str(v[5]), region, account)
		a.KeyARN = key
		if key == "" {
			a.AliasARN = alias // resolved through the alias history by the reports
		}
		if ref := str(v[13]); ref != "" {
			_, a.AliasARN = cloudtrail.KeyRef(ref, region, account)
			if name != "DeleteAlias" {
				if a.AliasTarget, _ = cloudtrail.KeyRef(str(v[14]), region, account); a.AliasTarget == "" {
					a.AliasTarget = a.KeyARN
				}
			}
		}
		if key, _ := cloudtrail.KeyRef(str(v[12]), region, account); key != "" {
			a.Key2ARN = key
		}
		m := len(aggCols) // the measures follow the groups
		var err error
		if a.Events, err = strconv.ParseInt(str(v[m]), 10, 64); err != nil || a.Events <= 0 {
			return fmt.Errorf("Athena query %s: group count %q", r.sum.QueryID, str(v[m]))
		}
		for i, dst := range []*int64{&a.First, &a.Last} {
			t, ok := cloudtrail.ParseEventTime(str(v[m+1+i]))
			if !ok {
				return fmt.Errorf("Athena query %s: group time %q", r.sum.QueryID, str(v[m+1+i]))
			}
			*dst = t
		}
		r.sum.Groups++
		r.sum.Events += a.Events
		rows = append(rows, a)
		return nil
	})
	if err != nil {
		return err
	}
	r.prog.State = "loading"
	r.report()
	w, err := st.NewWriter(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.StartRun(append(append([]string{}, r.o.Args...), "athena:"+r.sum.QueryID)); err != nil {
		return err
	}
	src := store.AggregateSource{Kind: "athena", QueryID: r.sum.QueryID, Catalog: r.o.Catalog, Database: r.o.Database,
		Table: r.o.Table, Workgroup: r.o.Workgroup, OutputLocation: r.o.OutputLocation, Query: q, From: r.o.From, To: r.o.To,
		Rows: r.sum.Rows, Events: r.sum.Events, DataScanned: r.sum.Scanned, StartedAt: started, FinishedAt: finished}
	hex.Decode(src.ResultSHA256[:], []byte(r.sum.ResultSHA))
	if r.sum.Replaced, err = w.ImportAggregates(src, rows); err != nil {
		return fmt.Errorf("store the aggregates of Athena query %s: %w", r.sum.QueryID, err)
	}
	r.sum.AggregateOf = []string{r.o.From.Format("2006-01-02"), r.o.To.AddDate(0, 0, -1).Format("2006-01-02")}
	return w.FinishRun(store.RunTotals{Status: "done"})
}
