package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/keyceremony/keyceremony/audit/auditcli"
)

// The audit group lives in audit/auditcli so it builds and is tested on its
// own; this registers it and maps its usage errors to ours (exit status 2).
func init() {
	Register(&Command{Name: "audit", Summary: auditcli.Summary, Run: runAudit})
}

func runAudit(ctx context.Context, env *Env, args []string) error {
	// "audit report", "audit fetch" and "audit athena" live in app/cli
	// (audit_*.go: they need the AWS connection flags); the rest in auditcli.
	if len(args) > 0 && args[0] == "report" {
		return auditReport(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "fetch" {
		return auditFetch(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "athena" {
		return auditAthena(ctx, env, args[1:])
	}
	err := auditcli.Run(ctx, &auditcli.Env{Stdin: env.Stdin, Stdout: env.Stdout, Stderr: env.Stderr}, args)
	if errors.Is(err, auditcli.ErrUsage) {
		return usagef("%s", strings.TrimPrefix(err.Error(), auditcli.ErrUsage.Error()+": "))
	}
	return err
}
