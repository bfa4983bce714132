package athena

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/athena"
	"github.com/aws/aws-sdk-go-v2/service/athena/types"
)

type runner struct {
	c     Client
	o     Options
	sum   *Summary
	start time.Time
	prog  Progress
}

func (r *runner) report() {
	if r.o.Progress != nil {
		r.prog.QueryID = r.sum.QueryID
		r.prog.Elapsed = time.Since(r.start)
		r.o.Progress(r.prog)
	}
}

// wait polls the query until it ends. A cancelled context stops the
// query in Athena too (it would otherwise run, and bill, to its end).
func (r *runner) wait(ctx context.Context) error {
	d := r.o.PollInterval
	for {
		out, err := r.c.GetQueryExecution(ctx, &athena.GetQueryExecutionInput{QueryExecutionId: aws.String(r.sum.QueryID)})
		if err != nil {
			if ctx.Err() != nil {
				r.stop()
			}
			return fmt.Errorf("poll Athena query %s: %w", r.sum.QueryID, err)
		}
		qe := out.QueryExecution
		if qe == nil || qe.Status == nil {
			return fmt.Errorf("poll Athena query %s: no status in the answer", r.sum.QueryID)
		}
		if s := qe.Statistics; s != nil {
			r.prog.Scanned = aws.ToInt64(s.DataScannedInBytes)
			r.sum.Scanned = r.prog.Scanned
			r.sum.QueryTime = time.Duration(aws.ToInt64(s.TotalExecutionTimeInMillis)) * time.Millisecond
		}
		r.prog.State = string(qe.Status.State)
		r.report()
		switch qe.Status.State {
		case types.QueryExecutionStateSucceeded:
			return nil
		case types.QueryExecutionStateFailed, types.QueryExecutionStateCancelled:
			reason := aws.ToString(qe.Status.StateChangeReason)
			if e := qe.Status.AthenaError; e != nil && aws.ToString(e.ErrorMessage) != "" && reason == "" {
				reason = aws.ToString(e.ErrorMessage)
			}
			return fmt.Errorf("%w: query %s %s: %s", ErrQueryFailed, r.sum.QueryID, strings.ToLower(string(qe.Status.State)), reason)
		}
		if err := r.o.Sleep(ctx, d); err != nil {
			r.stop()
			return fmt.Errorf("wait for Athena query %s: %w (the query was asked to stop)", r.sum.QueryID, err)
		}
		d = min(2*d, r.o.MaxPollInterval)
	}
}

func (r *runner) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.c.StopQueryExecution(ctx, &athena.StopQueryExecutionInput{QueryExecutionId: aws.String(r.sum.QueryID)})
}

// rows reads the result page by page, calling f with each row's values
// (nil for NULL) by column name index.
func (r *runner) rows(ctx context.Context, want []string, f func(v []*string) error) error {
	r.prog.State = "reading"
	var token *string
	var idx []int
	hasher := sha256.New()
	var hb []byte
	for {
		out, err := r.c.GetQueryResults(ctx, &athena.GetQueryResultsInput{QueryExecutionId: aws.String(r.sum.QueryID),
			MaxResults: aws.Int32(r.o.PageSize), NextToken: token})
		if err != nil {
			return fmt.Errorf("read the result of Athena query %s (page %d): %w", r.sum.QueryID, r.sum.Pages+1, err)
		}
		rs := out.ResultSet
		if rs == nil {
			return fmt.Errorf("read the result of Athena query %s: no result set", r.sum.QueryID)
		}
		rows := rs.Rows
		if idx == nil {
			if rs.ResultSetMetadata == nil {
				return fmt.Errorf("read the result of Athena query %s: no column names", r.sum.QueryID)
			}
			names := map[string]int{}
			for i, ci := range rs.ResultSetMetadata.ColumnInfo {
				names[strings.ToLower(aws.ToString(ci.Name))] = i
			}
			for _, w := range want {
				i, ok := names[w]
				if !ok {
					return fmt.Errorf("the result of Athena query %s has no column %q", r.sum.QueryID, w)
				}
				idx = append(idx, i)
			}
			// The first row of a SELECT's first page is the header.
			if len(rows) > 0 && header(rows[0], rs.ResultSetMetadata.ColumnInfo) {
				rows = rows[1:]
			}
		}
		r.sum.Pages++
		v := make([]*string, len(want))
		for _, row := range rows {
			hb = append(hb[:0], 'R')
			hb = binary.AppendUvarint(hb, uint64(len(row.Data)))
			for _, d := range row.Data {
				if d.VarCharValue == nil {
					hb = append(hb, 'n')
				} else {
					hb = append(hb, 's')
					hb = binary.AppendUvarint(hb, uint64(len(*d.VarCharValue)))
					hb = append(hb, *d.VarCharValue...)
				}
			}
			hasher.Write(hb)
			for i, j := range idx {
				v[i] = nil
				if j < len(row.Data) {
					v[i] = row.Data[j].VarCharValue
				}
			}
			r.sum.Rows++
			if err := f(v); err != nil {
				return err
			}
		}
		r.prog.Pages, r.prog.Rows = r.sum.Pages, r.sum.Rows
		r.report()
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	r.sum.ResultSHA = hex.EncodeToString(hasher.Sum(nil))
	return nil
}

func header(row types.Row, cols []types.ColumnInfo) bool {
	if len(row.Data) != len(cols) {
		return false
	}
	for i, d := range row.Data {
		if d.VarCharValue == nil || !strings.EqualFold(*d.VarCharValue, aws.ToString(cols[i].Name)) {
			return false
		}
	}
	return true
}

func names(cols [][2]string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c[0]
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
