package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/online"
)

// The evidence archive: an upload to S3, only because a person typed it.
func init() {
	Register(&Command{Name: "archive", Summary: "archive ceremony evidence in S3 under Object Lock", Run: func(ctx context.Context, env *Env, args []string) error {
		return subcommand(ctx, env, "archive", args, map[string]func(context.Context, *Env, []string) error{
			"put": archivePut,
		})
	}})
}

const archivePutUsage = "keyceremony archive put [--profile P --region R] --bucket B [--prefix P] --mode COMPLIANCE|GOVERNANCE --retain-until DATE FILE..."

func archivePut(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "archive put FILE...")
	conn := connectionFlags(fs)
	bucket := fs.String("bucket", "", "S3 bucket with Object Lock enabled (required)")
	prefix := fs.String("prefix", "", "key prefix, e.g. ceremonies/root-2026")
	mode := fs.String("mode", "", "Object Lock mode: COMPLIANCE or GOVERNANCE (required)")
	until := fs.String("retain-until", "", "retain until, YYYY-MM-DD (UTC) or RFC 3339 (required)")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if *bucket == "" || *mode == "" || *until == "" || fs.NArg() == 0 {
		return usagef("%s", archivePutUsage)
	}
	retain, err := reportTime(*until, false)
	if err != nil {
		return usagef("--retain-until: %v", err)
	}
	a, err := online.NewArchive(ctx, conn())
	if err != nil {
		return err
	}
	res, err := a.Put(ctx, online.ArchiveRequest{Bucket: *bucket, Prefix: *prefix, Mode: *mode, RetainUntil: retain, Files: fs.Args()}, time.Now())
	for _, r := range res {
		fmt.Fprintf(env.Stdout, "s3://%s/%s version %s sha256 %s (%s until %s)\n", *bucket, r.Key, r.VersionID, r.SHA256, *mode, retain.Format(time.RFC3339))
	}
	return err
}
