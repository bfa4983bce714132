package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/keyceremony/keyceremony/audit/store"
)

// The commands that read the audit database: events (a page at a time,
// or a count), raw (one original record), export (original records as a
// CloudTrail log document), coverage, keys.

func auditEvents(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "events", "events [--db PATH] [filters] [--oldest] [--limit N] [--after CURSOR] [--count] [--json]")
	db := fs.String("db", "", "audit database")
	filter := filterFlags(fs)
	oldest := fs.Bool("oldest", false, "oldest first (default newest first)")
	limit := fs.Int("limit", 50, "events per page")
	after := fs.String("after", "", "continue after this cursor (printed at the end of a page)")
	count := fs.Bool("count", false, "print only the number of matching events")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseInterspersed(fs, args); err != nil {
		return auditParseErr(err)
	}
	f, err := filter()
	if err != nil {
		return err
	}
	st, err := openExistingAuditStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if *count {
		n, err := st.CountEvents(ctx, f)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, n)
		return nil
	}
	var cur *store.Cursor
	if *after != "" {
		c, err := store.ParseCursor(*after)
		if err != nil {
			return usagef("%v", err)
		}
		cur = &c
	}
	order := store.Newest
	if *oldest {
		order = store.Oldest
	}
	pg, err := st.Events(ctx, f, order, cur, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			Events []store.Event `json:"events"`
			Next   string        `json:"next,omitempty"`
		}{Events: pg.Events}
		if pg.Next != nil {
			out.Next = pg.Next.String()
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tEVENT\tKEY\tPRINCIPAL\tERROR\tEVENT ID")
	for _, e := range pg.Events {
		p := e.PrincipalARN
		if p == "" {
			p = e.InvokedBy
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05"), e.Name, e.KeyARN, p, e.ErrorCode, e.EventID)
	}
	tw.Flush()
	if pg.Next != nil {
		fmt.Fprintf(env.Stdout, "next page: --after %s\n", pg.Next)
	}
	return nil
}

func auditRaw(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "raw", "raw [--db PATH] EVENT_ID")
	db := fs.String("db", "", "audit database")
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return auditParseErr(err)
	}
	if len(ids) != 1 {
		return usagef("audit raw needs one EVENT_ID")
	}
	st, err := openExistingAuditStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	raw, err := st.RawEvent(ctx, ids[0])
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(append(raw, '\n'))
	return err
}

func auditExport(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "export", "export [--db PATH] [filters] [-o FILE]: original records as a CloudTrail log document")
	db := fs.String("db", "", "audit database")
	filter := filterFlags(fs)
	out := fs.String("o", "", "output file (0600; default standard output)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return auditParseErr(err)
	}
	f, err := filter()
	if err != nil {
		return err
	}
	st, err := openExistingAuditStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	w := env.Stdout
	if *out != "" {
		fh, err := os.OpenFile(*out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer fh.Close()
		w = fh
	}
	n, err := st.ExportRaw(ctx, f, w)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(env.Stderr, "exported %d records\n", n)
	return nil
}

func auditCoverage(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "coverage", "coverage [--db PATH] [--json]")
	db := fs.String("db", "", "audit database")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseInterspersed(fs, args); err != nil {
		return auditParseErr(err)
	}
	st, err := openExistingAuditStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	days, err := st.Coverage(ctx, true)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(days)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tDAY\tFILES\tRECORDS\tKMS RECORDS\tKMS EVENTS\tNOTE")
	for _, d := range days {
		note := ""
		switch {
		case d.Files == 0 && d.Records == 0:
			note = "no logs: gap in evidence"
		case d.KMSRecords == 0:
			note = "no KMS events: trail may exclude KMS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", d.Account, d.Region, d.Day, d.Files, d.Records, d.KMSRecords, d.KMSEvents, note)
	}
	return tw.Flush()
}

func auditKeys(ctx context.Context, env *Env, args []string) error {
	fs := auditFlags(env, "keys", "keys [--db PATH] [--json]")
	db := fs.String("db", "", "audit database")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parseInterspersed(fs, args); err != nil {
		return auditParseErr(err)
	}
	st, err := openExistingAuditStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.Keys(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(keys)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tORIGIN\tSTATE\tROTATION\tEVENTS\tLAST SEEN\tALIASES")
	for _, k := range keys {
		rot := "?"
		if k.RotationEnabled != nil {
			rot = "off"
			if *k.RotationEnabled {
				rot = fmt.Sprintf("%dd", k.RotationPeriodDays)
			}
		}
		last := ""
		if !k.LastSeen.IsZero() {
			last = k.LastSeen.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", k.ARN, k.Origin, k.State, rot, k.Events, last, strings.Join(k.Aliases, ","))
	}
	return tw.Flush()
}
