package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/audit/kmsinventory"
)

const awsInventoryUsage = "keyceremony aws inventory [--profile P --region R --endpoint-url URL] -o FILE"

// awsInventory exports the region's KMS key inventory in the combined
// format `audit ingest` reads. Read-only on the AWS side.
func awsInventory(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "aws inventory")
	conn := connectionFlags(fs)
	out := fs.String("o", "", "file for the inventory (JSON; must not exist) (required)")
	quiet := fs.Bool("no-progress", false, "no progress lines on standard error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		return usagef("%s", awsInventoryUsage)
	}
	c := conn()
	cfg, err := c.Load(ctx)
	if err != nil {
		return err
	}
	var opt kmsinventory.Options
	if !*quiet {
		last := time.Time{}
		opt.Progress = func(p kmsinventory.Progress) {
			if time.Since(last) < time.Second && p.Done < p.Keys {
				return
			}
			last = time.Now()
			fmt.Fprintf(env.Stderr, "%d of %d keys examined\n", p.Done, p.Keys)
		}
	}
	sum, err := kmsinventory.New(cfg, c.Endpoint).Export(ctx, *out, opt)
	if err != nil {
		return err
	}
	fmt.Fprint(env.Stdout, sum)
	return nil
}
