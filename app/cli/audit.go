package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

// The audit group: loading CloudTrail KMS logs and key inventories into
// the audit database (audit_ingest.go), browsing it (audit_browse.go),
// the reports (audit_report.go), and the online sources: CloudTrail
// LookupEvents and a trail's S3 bucket (audit_fetch*.go), Athena
// (audit_athena.go).
func init() {
	Register(&Command{Name: "audit", Summary: "load CloudTrail KMS logs and key inventories; query the audit database", Run: runAudit})
}

// auditCommands are the audit group's commands; the group's usage line
// lists them all, the online ones (fetch, athena) included, so that
// `keyceremony audit` shows what the group can do.
var auditCommands = map[string]func(context.Context, *Env, []string) error{
	"ingest":   auditIngest,
	"events":   auditEvents,
	"raw":      auditRaw,
	"export":   auditExport,
	"coverage": auditCoverage,
	"keys":     auditKeys,
	"report":   auditReport,
	"fetch":    auditFetch,
	"athena":   auditAthena,
}

func runAudit(ctx context.Context, env *Env, args []string) error {
	return subcommand(ctx, env, "audit", args, auditCommands)
}

// parseInterspersed lets flags follow paths ("ingest logs/ --json").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func auditFlags(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("keyceremony audit "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: keyceremony audit %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

func auditParseErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return usagef("%v", err)
}

// auditDBPath is path, or the user's default audit database
// (<user config dir>/keyceremony/audit.db) when path is empty.
func auditDBPath(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	return store.DefaultPath()
}

// openAuditStore opens the audit database (auditDBPath), creating it if
// need be: for the commands that load evidence into it.
func openAuditStore(ctx context.Context, path string) (*store.Store, error) {
	path, err := auditDBPath(path)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, path)
}

// openExistingAuditStore is openAuditStore for the commands that only read
// (the browsing commands, the reports): a database that does not exist is
// an error, never created. A mistyped --db would otherwise leave an empty
// database behind and answer "no events", which an auditor could take for
// evidence that nothing happened.
func openExistingAuditStore(ctx context.Context, path string) (*store.Store, error) {
	path, err := auditDBPath(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("audit database %s: %w (ingest logs first: keyceremony audit ingest --db %s PATHS)", path, err, path)
	}
	return store.Open(ctx, path)
}

func filterFlags(fs *flag.FlagSet) func() (store.Filter, error) {
	from := fs.String("from", "", "start time (RFC 3339 or YYYY-MM-DD, inclusive)")
	to := fs.String("to", "", "end time (RFC 3339 or YYYY-MM-DD, exclusive)")
	key := fs.String("key", "", "key ARN or key id")
	alias := fs.String("alias", "", "alias name or ARN")
	principal := fs.String("principal", "", "principal ARN or IAM role ARN")
	name := fs.String("name", "", "event name (Decrypt, ...)")
	errorsOnly := fs.Bool("errors", false, "failed calls only")
	account := fs.String("account", "", "account id")
	region := fs.String("region", "", "region")
	return func() (store.Filter, error) {
		f := store.Filter{KeyARN: *key, Alias: *alias, Principal: *principal, EventName: *name,
			ErrorsOnly: *errorsOnly, Account: *account, Region: *region}
		var err error
		if f.From, err = parseWhen(*from); err != nil {
			return f, err
		}
		f.To, err = parseWhen(*to)
		return f, err
	}
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("invalid time %q (want RFC 3339 or YYYY-MM-DD)", s)
}
