// Package cloudtrailgen writes realistic CloudTrail logs with AWS KMS events
// in the S3 delivery layout, for the audit ingest tests and benchmark.
//
// Output: DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
// <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<id>.json.gz, each a gzipped
// compact {"Records":[...]} as CloudTrail writes them. The mix: data-plane
// calls (Decrypt without keyId, GenerateDataKey through aliases, ReEncrypt
// with two keys, Sign/Verify), control-plane calls (CreateKey, CreateAlias,
// UpdateAlias, ImportKeyMaterial with validTo, ScheduleKeyDeletion), service
// events (RotateKey, DeleteExpiredKeyMaterial), IAM users, assumed roles and
// AWS services as principals, failed calls, second deliveries of the same
// events in another file, whole files delivered twice under another name,
// non-KMS noise, a trail that excludes KMS events and a day with no files.
//
// Everything is derived from Config.Seed, so a run is reproducible and Stats
// gives the exact counts a loader must find.
package cloudtrailgen

import (
	"compress/gzip"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Config says what to generate. Zero fields take the defaults of Defaults.
type Config struct {
	Seed      uint64
	KMSEvents int // unique KMS events
	Accounts  []string
	Regions   []string
	Start     time.Time // first day, UTC midnight
	Days      int
	// FileInterval is the span of one log file per account and region
	// (CloudTrail delivers about every 5 minutes).
	FileInterval time.Duration
	// NoiseRatio is non-KMS records per KMS record.
	NoiseRatio float64
	// DupRatio is the share of files delivered again as a second file that
	// repeats about half of their KMS events (CloudTrail's at-least-once delivery).
	DupRatio float64
	// ErrorRatio is the share of KMS calls that failed.
	ErrorRatio float64
	// DuplicateFiles is how many files are also written under another name.
	DuplicateFiles int
	// KeysPerRegion is the number of customer keys per account and region.
	KeysPerRegion int
	// NoGaps turns off the day without files and the trail without KMS events.
	NoGaps  bool
	Workers int
	// GzipLevel for the files; 0 means gzip.DefaultCompression.
	GzipLevel int
}

// Defaults fills zero fields.
func (c Config) Defaults() Config {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.KMSEvents == 0 {
		c.KMSEvents = 10000
	}
	if len(c.Accounts) == 0 {
		c.Accounts = []string{"111122223333", "444455556666"}
	}
	if len(c.Regions) == 0 {
		c.Regions = []string{"us-east-1", "eu-west-1"}
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Days == 0 {
		c.Days = 7
	}
	if c.FileInterval == 0 {
		c.FileInterval = time.Hour
	}
	if c.NoiseRatio == 0 {
		c.NoiseRatio = 0.15
	}
	if c.DupRatio == 0 {
		c.DupRatio = 0.02
	}
	if c.ErrorRatio == 0 {
		c.ErrorRatio = 0.02
	}
	if c.DuplicateFiles == 0 {
		c.DuplicateFiles = 2
	}
	if c.KeysPerRegion == 0 {
		c.KeysPerRegion = 8
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.GzipLevel == 0 {
		c.GzipLevel = gzip.DefaultCompression
	}
	return c
}

// Stats are the exact counts of what was written.
type Stats struct {
	Files          int   // distinct log files (by content)
	DuplicateFiles int   // extra copies of a file under another name
	KMSEvents      int   // unique KMS events (distinct eventID)
	KMSDuplicates  int   // extra deliveries of KMS events already written elsewhere
	NonKMS         int   // non-KMS records, counting all files once (copies excluded)
	JSONBytes      int64 // uncompressed size of all files including copies
	GzipBytes      int64 // size on disk
	// Errors is the number of unique KMS events with an errorCode.
	Errors int
	// GapDay is the day (YYYY-MM-DD) with no files for Accounts[0]/Regions[0];
	// NoKMSTrail names the account/region whose trail excludes KMS events.
	GapDay     string
	NoKMSTrail [2]string
	// Keys and Aliases are the customer keys and the aliases the logs use
	// (alias ARN -> key ARN as of the last UpdateAlias).
	Keys    []string
	Aliases map[string]string
}

type slot struct {
	idx     int
	account string
	region  string
	start   time.Time
	nKMS    int
	noKMS   bool
	kmsBase int
}

// Generate writes the tree under dir and returns the counts.
func Generate(dir string, cfg Config) (Stats, error) {
	cfg = cfg.Defaults()
	if cfg.FileInterval < time.Minute || cfg.Days < 1 {
		return Stats{}, errors.New("cloudtrailgen: FileInterval >= 1m and Days >= 1")
	}
	perDay := int(24 * time.Hour / cfg.FileInterval)
	gapDay := cfg.Start.AddDate(0, 0, min(2, cfg.Days-1))
	var st Stats
	st.Aliases = map[string]string{}
	if !cfg.NoGaps {
		st.GapDay = gapDay.Format("2006-01-02")
		if len(cfg.Accounts) > 1 || len(cfg.Regions) > 1 {
			st.NoKMSTrail = [2]string{cfg.Accounts[len(cfg.Accounts)-1], cfg.Regions[len(cfg.Regions)-1]}
		}
	}
	var slots []*slot
	for _, a := range cfg.Accounts {
		for _, r := range cfg.Regions {
			for d := 0; d < cfg.Days; d++ {
				day := cfg.Start.AddDate(0, 0, d)
				if !cfg.NoGaps && a == cfg.Accounts[0] && r == cfg.Regions[0] && day.Equal(gapDay) && cfg.Days > 1 {
					continue // a day whose files are missing
				}
				for i := 0; i < perDay; i++ {
					slots = append(slots, &slot{idx: len(slots), account: a, region: r,
						start: day.Add(time.Duration(i) * cfg.FileInterval),
						noKMS: a == st.NoKMSTrail[0] && r == st.NoKMSTrail[1]})
				}
			}
		}
	}
	var kmsSlots []*slot
	for _, s := range slots {
		if !s.noKMS {
			kmsSlots = append(kmsSlots, s)
		}
	}
	if len(kmsSlots) == 0 {
		return Stats{}, errors.New("cloudtrailgen: no slot may carry KMS events")
	}
	base := 0
	for i, s := range kmsSlots {
		s.nKMS = cfg.KMSEvents / len(kmsSlots)
		if i < cfg.KMSEvents%len(kmsSlots) {
			s.nKMS++
		}
		s.kmsBase = base
		base += s.nKMS
	}
	world := newWorld(cfg)
	st.Keys = world.allKeys()
	for a, k := range world.finalAliases() {
		st.Aliases[a] = k
	}

	type result struct {
		files, kms, dups, noise, errs int
		json, gz                      int64
		err                           error
	}
	results := make([]result, len(slots))
	var wg sync.WaitGroup
	next := make(chan *slot)
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for s := range next {
				res := &results[s.idx]
				g := world.slotGen(s)
				buf = buf[:0]
				buf, res.kms, res.noise, res.errs = g.file(buf)
				n, err := writeGz(dir, s, "", buf, cfg.GzipLevel)
				if err != nil {
					res.err = err
					continue
				}
				res.files, res.json, res.gz = 1, int64(len(buf)), n
				if g.rng.Float64() < cfg.DupRatio && len(g.kmsRecs) > 0 {
					// A second delivery repeating about half of the KMS records.
					buf = buf[:0]
					buf = append(buf, `{"Records":[`...)
					k := 0
					for i, rec := range g.kmsRecs {
						if i%2 == 0 {
							if k > 0 {
								buf = append(buf, ',')
							}
							buf = append(buf, rec...)
							k++
						}
					}
					buf = append(buf, "]}"...)
					n, err := writeGz(dir, s, "redelivery", buf, cfg.GzipLevel)
					if err != nil {
						res.err = err
						continue
					}
					res.files++
					res.dups += k
					res.json += int64(len(buf))
					res.gz += n
				}
			}
		}()
	}
	for _, s := range slots {
		next <- s
	}
	close(next)
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return st, r.err
		}
		st.Files += r.files
		st.KMSEvents += r.kms
		st.KMSDuplicates += r.dups
		st.NonKMS += r.noise
		st.Errors += r.errs
		st.JSONBytes += r.json
		st.GzipBytes += r.gz
	}
	// Whole files delivered twice under another name: same bytes, so the
	// same SHA-256; a loader must count them once.
	for i := 0; i < cfg.DuplicateFiles && i < len(slots); i++ {
		s := slots[(i*7919+3)%len(slots)]
		src := filePath(dir, s, "")
		b, err := os.ReadFile(src)
		if err != nil {
			return st, err
		}
		dst := filePath(dir, s, "copy"+strconv.Itoa(i))
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return st, err
		}
		st.DuplicateFiles++
		st.GzipBytes += int64(len(b))
	}
	return st, nil
}

func filePath(dir string, s *slot, suffix string) string {
	t := s.start
	name := fmt.Sprintf("%s_CloudTrail_%s_%s_%s.json.gz", s.account, s.region,
		t.Format("20060102T1504Z"), uniq(s, suffix))
	return filepath.Join(dir, "AWSLogs", s.account, "CloudTrail", s.region,
		t.Format("2006"), t.Format("01"), t.Format("02"), name)
}

// uniq is the random-looking part of a CloudTrail file name.
func uniq(s *slot, suffix string) string {
	h := uint64(s.idx)*0x9E3779B97F4A7C15 + 12345
	for _, c := range suffix {
		h = (h ^ uint64(c)) * 0x100000001B3
	}
	const al = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 16)
	for i := range b {
		b[i] = al[h%uint64(len(al))]
		h = h*6364136223846793005 + 1442695040888963407
		h ^= h >> 29
	}
	return string(b)
}

func writeGz(dir string, s *slot, suffix string, data []byte, level int) (int64, error) {
	p := filePath(dir, s, suffix)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	zw, err := gzip.NewWriterLevel(f, level)
	if err != nil {
		f.Close()
		return 0, err
	}
	if _, err := zw.Write(data); err != nil {
		f.Close()
		return 0, err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return fi.Size(), f.Close()
}

// rngFor gives each slot its own stream so workers need no coordination.
func rngFor(seed uint64, idx int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(idx)*2654435761+1))
}
