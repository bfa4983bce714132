package cloudtrailgen

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CopyDaysFrom copies the files of a generated tree whose day is on or
// after cut (YYYY-MM-DD) into dst, in the same layout, and returns how many
// it copied: the later days, for a test that loads them first (the calls
// that name only an alias then cannot be resolved until the earlier days,
// which hold the alias changes, are loaded).
func CopyDaysFrom(tree, dst, cut string) (int, error) {
	n := 0
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(tree, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		// AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/file
		if len(parts) < 8 || strings.Join(parts[4:7], "-") < cut {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(out, b, 0o600); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("copy the days from %s of %s: %w", cut, tree, err)
	}
	return n, nil
}

// WriteAt writes a CloudTrail log file (plain JSON) holding one Decrypt
// call per time, in one account and region: times repeated give events at
// the same second, times at 00:00:00 and 23:59:59 events at a day's edges.
// Event ids are numbered from first.
func WriteAt(path string, first int, times []time.Time) error {
	recs := make([]map[string]any, 0, len(times))
	for i, at := range times {
		recs = append(recs, map[string]any{
			"eventVersion": "1.11", "eventTime": at.UTC().Format(time.RFC3339), "eventSource": "kms.amazonaws.com",
			"eventName": "Decrypt", "awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
			"eventID":      fmt.Sprintf("00000000-0000-4000-8000-%012d", first+i),
			"userIdentity": map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/Alice", "accountId": "111122223333"},
			"resources":    []any{map[string]any{"type": "AWS::KMS::Key", "ARN": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
			"eventType":    "AwsApiCall", "managementEvent": false, "eventCategory": "Data",
		})
	}
	doc, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, doc, 0o600)
}

// EdgeTimes are times at the edges of days from start: for each day given
// (days from start), three events at 00:00:00, one at 00:00:01, two at
// 12:00:00 and three at 23:59:59.
func EdgeTimes(start time.Time, days ...int) []time.Time {
	var out []time.Time
	for _, d := range days {
		day := start.AddDate(0, 0, d)
		for _, c := range []struct {
			at time.Duration
			n  int
		}{{0, 3}, {time.Second, 1}, {12 * time.Hour, 2}, {24*time.Hour - time.Second, 3}} {
			for range c.n {
				out = append(out, day.Add(c.at))
			}
		}
	}
	return out
}
