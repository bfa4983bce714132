package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/athena"
)

const auditAthenaUsage = `keyceremony audit athena --database D --table T [--workgroup W] [--output-location s3://BUCKET/PREFIX/]
        --from DATE --to DATE [--aggregate] [--where SQL] [--catalog C] [--db PATH] [--json] [--no-progress]
        [--profile P] [--region R] [--endpoint-url URL]

Runs the KMS query on your Athena table over the CloudTrail trail and loads
the result: the KMS records of the period (default), or with --aggregate
the events counted per day, key, operation and principal (reports then
say that they rest on aggregates, without per-event evidence). --where adds
a condition on the table's partition columns, e.g.
  --where "\"timestamp\" BETWEEN '2025/03/01' AND '2025/03/31'"
without which Athena scans (and bills) the whole trail.`

// auditAthena runs "keyceremony audit athena". It opens a network
// connection to AWS (Athena), and only because a person typed it.
func auditAthena(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "audit athena")
	conn := connectionFlags(fs)
	dbPath := fs.String("db", "", "audit database (default: the user's, as for audit ingest)")
	catalog := fs.String("catalog", "AwsDataCatalog", "Athena data catalog")
	database := fs.String("database", "", "Athena database of the CloudTrail table (required)")
	table := fs.String("table", "", "the CloudTrail table (required)")
	workgroup := fs.String("workgroup", "primary", "Athena workgroup")
	output := fs.String("output-location", "", "s3:// location for the query result (unless the workgroup sets one)")
	fromS := fs.String("from", "", "start of the period, YYYY-MM-DD (UTC) or RFC 3339 (required)")
	toS := fs.String("to", "", "end of the period: YYYY-MM-DD includes that day (required)")
	aggregate := fs.Bool("aggregate", false, "load counts per day, key, operation and principal instead of the records")
	where := fs.String("where", "", "extra SQL condition, for the table's partition columns")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	quiet := fs.Bool("no-progress", false, "no progress lines on standard error")
	fs.Usage = func() { fmt.Fprintln(env.Stderr, auditAthenaUsage) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q\n%s", fs.Arg(0), auditAthenaUsage)
	}
	if *database == "" || *table == "" || *fromS == "" || *toS == "" {
		return usagef("--database, --table, --from and --to are required\n%s", auditAthenaUsage)
	}
	from, err := reportTime(*fromS, false)
	if err != nil {
		return usagef("--from: %v", err)
	}
	to, err := reportTime(*toS, true)
	if err != nil {
		return usagef("--to: %v", err)
	}
	o := athena.Options{Catalog: *catalog, Database: *database, Table: *table, Workgroup: *workgroup, OutputLocation: *output,
		From: from, To: to, Aggregate: *aggregate, Where: *where, Args: append([]string{"audit", "athena"}, args...)}
	// Refuse bad names, dates and locations before any network call.
	if err := athena.Check(o); err != nil {
		return usagef("%v", err)
	}
	c := conn()
	cfg, err := c.Load(ctx)
	if err != nil {
		return err
	}
	st, err := openAuditStore(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if !*quiet {
		last, lastState := time.Time{}, ""
		o.Progress = func(p athena.Progress) {
			if time.Since(last) < time.Second && p.State == lastState {
				return
			}
			last, lastState = time.Now(), p.State
			fmt.Fprintln(env.Stderr, p)
		}
	}
	sum, err := athena.Run(ctx, athena.NewClient(cfg, c.Endpoint), st, o)
	if sum != nil && (err == nil || *asJSON) {
		if *asJSON {
			data, _ := json.MarshalIndent(sum, "", "  ")
			fmt.Fprintf(env.Stdout, "%s\n", data)
		} else {
			fmt.Fprint(env.Stdout, sum.Text(st.Path()))
		}
	}
	if err != nil {
		return fmt.Errorf("audit athena: %w", err)
	}
	return nil
}
