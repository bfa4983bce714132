package keyprov

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/provenance"
	"github.com/keyceremony/keyceremony/audit/report"
	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/ceremony/words"
)

// Options say what to report.
type Options struct {
	Scope    report.Scope
	Progress report.ProgressFunc
	// Skew is the clock difference allowed between the ceremony laptop and
	// AWS (default 15 minutes); ExpiryWarnDays flags material expiring
	// within that many days after the period (default 30).
	Skew           time.Duration
	ExpiryWarnDays int
	Now            func() time.Time
	Generator      string
}

// Build computes the key provenance report from the database.
func Build(ctx context.Context, st *store.Store, o Options) (*Report, error) {
	if err := o.Scope.Validate(); err != nil {
		return nil, err
	}
	if o.ExpiryWarnDays == 0 {
		o.ExpiryWarnDays = 30
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	steps := &report.Stepper{F: o.Progress, Steps: 4}
	conn, release, err := report.ReadConn(ctx, st.DB())
	if err != nil {
		return nil, err
	}
	defer release()
	sc := o.Scope
	dig := report.NewDigest()
	r := &Report{Meta: report.Meta{Kind: "provenance", Title: "Key provenance report", GeneratedAt: now().UTC().Truncate(time.Second),
		Generator: o.Generator, Scope: sc.JSON()}}

	steps.Next("reading the ingest provenance")
	if r.Meta.Provenance, err = report.LoadProvenance(ctx, st, conn); err != nil {
		return nil, err
	}
	steps.Next("reading ceremonies and key lifecycle events")
	cers, err := st.Ceremonies(ctx)
	if err != nil {
		return nil, err
	}
	dig.Section("ceremonies")
	var inCers []store.Ceremony
	for _, c := range cers {
		facts, _ := json.Marshal(c.Facts)
		dig.Row(c.FinalHash, c.Kind, c.CeremonyID, c.Started.Unix(), c.Ended.Unix(), c.Rehearsal, hex.EncodeToString(c.TranscriptSHA256), string(facts))
		// A ceremony held after the period is not known at its end, as
		// the events after it are not.
		if res := resource(&c); (res == "" || inScope(res, sc)) && c.Started.Before(sc.To) {
			inCers = append(inCers, c)
		}
	}
	allKMS, err := loadKMS(ctx, st, conn, sc.To, dig)
	if err != nil {
		return nil, err
	}
	var kms []provenance.KMSEvent
	for _, e := range allKMS {
		if e.KeyARN != "" && inScope(e.KeyARN, sc) {
			kms = append(kms, e)
		}
	}
	allPCA, err := st.PCAEvents(ctx)
	if err != nil {
		return nil, err
	}
	dig.Section("pca-events")
	var pca []store.PCAEvent
	for _, e := range allPCA {
		dig.Row(e.EventID, e.Time.Unix(), e.Name, e.CAARN, e.ErrorCode, e.Raw)
		if e.CAARN != "" && e.Time.Before(sc.To) && inScope(e.CAARN, sc) {
			pca = append(pca, e)
		}
	}
	inv, err := loadInventory(ctx, conn, dig)
	if err != nil {
		return nil, err
	}

	steps.Next("reading the ingest coverage")
	b := &builder{r: r, sc: sc, inv: inv, keys: map[string]*Section{}, cas: map[string]*Section{}}
	b.collect(inCers, kms, pca)
	var pairs []report.Pair
	for _, s := range b.sections() {
		pairs = append(pairs, report.Pair{Account: s.Account, Region: s.Region})
	}
	cov, err := report.LoadCoverage(ctx, st, sc, pairs)
	if err != nil {
		return nil, err
	}
	for _, g := range cov.Gaps() {
		dig.Section("gap")
		dig.Row(g.Account, g.Region, g.From, g.To, g.Kind)
		r.Coverage = append(r.Coverage, g)
	}
	r.Meta.Coverage = report.Verdict(r.Coverage, len(cov.Pairs()))
	if r.Conflicts, err = report.LoadConflicts(ctx, st, sc, dig); err != nil {
		return nil, err
	}

	steps.Next("joining imports to ceremonies")
	skew := o.Skew
	if skew == 0 {
		skew = 15 * time.Minute
	}
	po := provenance.Options{Skew: skew, AsOf: sc.To, ExpiryWarn: time.Duration(o.ExpiryWarnDays) * 24 * time.Hour,
		Covered: func(arn string, from, to time.Time) bool {
			account, region := arnParts(arn)
			return !to.After(from) || cov.Complete(account, region, from, to)
		}}
	res := provenance.Match(inCers, kms, pca, po)
	r.Rule = Rule{ClockSkewMinutes: int(skew.Minutes()), ParametersToleranceSecs: 120, ExpiryWarnDays: o.ExpiryWarnDays,
		ParametersLifetimeHours: int(provenance.ParametersLifetime.Hours())}
	r.Findings = res.Findings
	if err := b.fill(ctx, conn, res, cov); err != nil {
		return nil, err
	}
	b.ceremonies(inCers, res)
	r.Summary = summarize(r, res)
	r.Meta.InputSHA256, r.Meta.InputRows = dig.Sum()
	for _, f := range r.Meta.Provenance.Failures {
		if strings.Contains(f.Error, "ceremony transcript") && strings.Contains(f.Error, "refused") {
			r.Rule.TranscriptsRefusedInRuns++
		}
	}
	if r.Rule.TranscriptsRefusedInRuns > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d ceremony transcript(s) offered to the ingest were refused (they did not verify, were incomplete, contradicted the paper or were rehearsals); they are named with their SHA-256 and reason among the failed files, and no fact of theirs is used here.", r.Rule.TranscriptsRefusedInRuns))
	}
	if len(inCers) == 0 {
		r.Notes = append(r.Notes, "The database holds no ceremony record in scope: load ceremony output directories with keyceremony audit ingest DIR.")
	}
	if r.Keys == nil {
		r.Keys = []Section{}
	}
	if r.CAs == nil {
		r.CAs = []Section{}
	}
	if r.Coverage == nil {
		r.Coverage = []report.Gap{}
	}
	if r.Ceremonies == nil {
		r.Ceremonies = []Ceremony{}
	}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	return r, nil
}

// resource is the KMS key or Private CA a ceremony produced for.
func resource(c *store.Ceremony) string {
	if b := c.Facts.BYOK; b != nil {
		return b.KeyARN
	}
	if x := c.Facts.Certificate; x != nil {
		return x.CAARN
	}
	return ""
}

type builder struct {
	r    *Report
	sc   report.Scope
	inv  map[string]keyInfo
	keys map[string]*Section // by ARN
	cas  map[string]*Section
	evs  []provenance.KMSEvent
	pca  []store.PCAEvent
	cers []store.Ceremony
}

// collect decides which keys and CAs get a section: keys created with
// origin EXTERNAL (CreateKey or the inventory), keys with import
// parameters or imports, keys a byok-wrap ceremony names; CAs with a
// certificate installation or a ca-signing ceremony.
func (b *builder) collect(cers []store.Ceremony, kms []provenance.KMSEvent, pca []store.PCAEvent) {
	b.evs, b.pca, b.cers = kms, pca, cers
	key := func(arn string) *Section {
		for a, s := range b.keys {
			if provenance.SameKey(a, arn) {
				return s
			}
		}
		account, region := arnParts(arn)
		s := &Section{ARN: arn, Account: account, Region: region, Timeline: []TimelineItem{}, Findings: []provenance.Finding{}, Gaps: []report.Gap{}}
		if in, ok := b.inv[arn]; ok {
			s.Spec, s.Origin, s.Description = in.spec, in.origin, in.desc
		}
		b.keys[arn] = s
		return s
	}
	for arn, in := range b.inv {
		if in.origin == "EXTERNAL" && inScope(arn, b.sc) {
			key(arn)
		}
	}
	for _, e := range kms {
		switch {
		case e.Name == "CreateKey" && e.Origin == "EXTERNAL", e.Name == "GetParametersForImport", e.Name == "ImportKeyMaterial":
			s := key(e.KeyARN)
			if e.Name == "CreateKey" {
				s.Spec, s.Origin = e.KeySpec, e.Origin
			}
		}
	}
	for i := range cers {
		if bf := cers[i].Facts.BYOK; bf != nil && cers[i].Kind == "byok-wrap" {
			key(bf.KeyARN)
		}
	}
	ca := func(arn string) {
		if b.cas[arn] == nil {
			account, region := arnParts(arn)
			b.cas[arn] = &Section{ARN: arn, Account: account, Region: region, Timeline: []TimelineItem{}, Findings: []provenance.Finding{}, Gaps: []report.Gap{}}
		}
	}
	for _, e := range pca {
		ca(e.CAARN)
	}
	for i := range cers {
		if x := cers[i].Facts.Certificate; x != nil && cers[i].Kind == "ca-signing" && x.CAARN != "" {
			ca(x.CAARN)
		}
	}
}

func (b *builder) sections() []*Section {
	var out []*Section
	for _, s := range b.keys {
		out = append(out, s)
	}
	for _, s := range b.cas {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out
}

// fill writes every section's timeline, findings, usage and gaps.
func (b *builder) fill(ctx context.Context, db *report.Conn, res *provenance.Result, cov *report.Coverage) error {
	imports := map[string]*provenance.Import{}
	for i := range res.Imports {
		imports[res.Imports[i].Event.EventID] = &res.Imports[i]
	}
	caImports := map[string]*provenance.CAImport{}
	for i := range res.CAImports {
		caImports[res.CAImports[i].EventID] = &res.CAImports[i]
	}
	state := map[string]string{}
	for _, u := range res.Ceremonies {
		state[u.FinalHash] = u.State
	}
	for _, s := range b.keys {
		var total, traced int
		var untraced []string
		for _, e := range b.evs {
			if !provenance.SameKey(e.KeyARN, s.ARN) {
				continue
			}
			it := TimelineItem{Time: e.Time, Kind: "event", What: e.Name, EventID: e.EventID, Principal: e.Principal, Error: e.ErrorCode, Detail: eventDetail(&e)}
			if imp := imports[e.EventID]; imp != nil {
				total++
				it.Status, it.FinalHash = string(imp.Status), imp.FinalHash
				if imp.Status == provenance.Matched {
					traced++
					it.Detail += "; from ceremony " + imp.CeremonyID
				} else {
					untraced = append(untraced, string(imp.Status))
				}
			}
			s.Timeline = append(s.Timeline, it)
		}
		for i := range b.cers {
			c := &b.cers[i]
			if bf := c.Facts.BYOK; bf != nil && provenance.SameKey(bf.KeyARN, s.ARN) {
				s.Timeline = append(s.Timeline, ceremonyItem(c, state[c.FinalHash]))
			}
		}
		switch {
		case total == 0:
			s.Verdict = "no import of key material in the logs up to the end of the period"
		case traced == total:
			s.Verdict = fmt.Sprintf("every import (%d) traced to a witnessed ceremony", total)
		default:
			s.Verdict = fmt.Sprintf("%d of %d import(s) NOT traced to a witnessed ceremony (%s)", total-traced, total, strings.Join(untraced, ", "))
		}
		var err error
		if s.UsageCalls, s.UsageFailed, err = usage(ctx, db, s.ARN, b.sc); err != nil {
			return fmt.Errorf("count the usage of %s: %w", s.ARN, err)
		}
		b.finish(s, res, cov)
		b.r.Keys = append(b.r.Keys, *s)
	}
	for _, s := range b.cas {
		var total, traced int
		for _, e := range b.pca {
			if e.CAARN != s.ARN {
				continue
			}
			it := TimelineItem{Time: e.Time, Kind: "event", What: e.Name, EventID: e.EventID, Principal: e.Principal, Error: e.ErrorCode}
			if imp := caImports[e.EventID]; imp != nil {
				total++
				it.Status, it.FinalHash = string(imp.Status), imp.FinalHash
				if imp.Status == provenance.Matched {
					traced++
					it.Detail = "from ceremony " + imp.CeremonyID
				}
				if len(imp.Reasons) > 0 {
					it.Detail = strings.Join(imp.Reasons, "; ")
				}
			}
			s.Timeline = append(s.Timeline, it)
		}
		for i := range b.cers {
			c := &b.cers[i]
			if x := c.Facts.Certificate; x != nil && c.Kind == "ca-signing" && x.CAARN == s.ARN {
				s.Timeline = append(s.Timeline, ceremonyItem(c, state[c.FinalHash]))
			}
		}
		switch {
		case total == 0:
			s.Verdict = "no CA certificate installation in the logs up to the end of the period"
		case traced == total:
			s.Verdict = fmt.Sprintf("every CA certificate installation (%d) traced to a witnessed ca-signing ceremony", total)
		default:
			s.Verdict = fmt.Sprintf("%d of %d CA certificate installation(s) NOT traced to a witnessed ceremony", total-traced, total)
		}
		b.finish(s, res, cov)
		b.r.CAs = append(b.r.CAs, *s)
	}
	sort.Slice(b.r.Keys, func(i, j int) bool { return b.r.Keys[i].ARN < b.r.Keys[j].ARN })
	sort.Slice(b.r.CAs, func(i, j int) bool { return b.r.CAs[i].ARN < b.r.CAs[j].ARN })
	return nil
}

// finish sorts a section's timeline and attaches its findings and gaps.
func (b *builder) finish(s *Section, res *provenance.Result, cov *report.Coverage) {
	sort.SliceStable(s.Timeline, func(i, j int) bool { return s.Timeline[i].Time.Before(s.Timeline[j].Time) })
	for _, f := range res.Findings {
		if f.Resource == s.ARN || provenance.SameKey(f.Resource, s.ARN) {
			s.Findings = append(s.Findings, f)
		}
	}
	s.Gaps = append(s.Gaps, cov.Between(s.Account, s.Region, b.sc.From, b.sc.To)...)
}

func ceremonyItem(c *store.Ceremony, state string) TimelineItem {
	what := c.Kind + " ceremony " + c.CeremonyID
	if c.Rehearsal {
		what = "REHEARSAL " + what
		state = "rehearsal: not evidence"
	}
	return TimelineItem{Time: c.Started, Kind: "ceremony", What: what, Status: state, FinalHash: c.FinalHash,
		Detail: fmt.Sprintf("ended %s; %s; final hash %s", report.FormatTime(c.Ended), participants(c), words.String(mustHex(c.FinalHash)))}
}

// eventDetail says what a lifecycle record states, in a few words.
func eventDetail(e *provenance.KMSEvent) string {
	var p []string
	add := func(label, v string) {
		if v != "" {
			p = append(p, label+v)
		}
	}
	switch e.Name {
	case "CreateKey":
		add("origin ", e.Origin)
		add("", e.KeySpec)
	case "GetParametersForImport":
		add("", e.WrappingAlgorithm)
		add("wrapping key ", e.WrappingKeySpec)
		if e.OK() {
			p = append(p, "parameters valid until about "+report.FormatTime(e.Time.Add(provenance.ParametersLifetime)))
		}
	case "ImportKeyMaterial":
		add("", e.ExpirationModel)
		if !e.ValidTo.IsZero() {
			p = append(p, "validTo "+report.FormatTime(e.ValidTo))
		}
		add("import type ", e.ImportType)
		add("key material ", e.KeyMaterialID)
	case "RotateKeyOnDemand":
		add("key material ", e.KeyMaterialID)
	}
	return strings.Join(p, ", ")
}

func participants(c *store.Ceremony) string {
	var p []string
	for _, x := range c.Participants {
		p = append(p, x.Name+" ("+x.Role+")")
	}
	if len(p) == 0 {
		return "no participant recorded"
	}
	return strings.Join(p, ", ")
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// ceremonies lists the stored ceremonies in scope as the report states them.
func (b *builder) ceremonies(cers []store.Ceremony, res *provenance.Result) {
	state := map[string]string{}
	for _, u := range res.Ceremonies {
		state[u.FinalHash] = u.State
	}
	for i := range cers {
		c := &cers[i]
		var people []string
		for _, p := range c.Participants {
			people = append(people, p.Name+" ("+p.Role+")")
		}
		out := Ceremony{FinalHash: c.FinalHash, FinalWords: words.String(mustHex(c.FinalHash)), CeremonyID: c.CeremonyID, Kind: c.Kind, Title: c.Title,
			Started: c.Started, Ended: c.Ended, Rehearsal: c.Rehearsal, Participants: people, Resource: resource(c), ScriptSHA256: c.ScriptSHA256,
			BinarySHA256: c.BinarySHA256, BinaryVersion: c.BinaryVersion, Anchors: c.Anchors, Transcript: c.TranscriptPath,
			TranscriptHash: hex.EncodeToString(c.TranscriptSHA256), Produced: produced(c), State: state[c.FinalHash]}
		if c.Rehearsal {
			out.State = "rehearsal: not evidence"
		}
		if out.Participants == nil {
			out.Participants = []string{}
		}
		b.r.Ceremonies = append(b.r.Ceremonies, out)
	}
}

// produced is what a ceremony made, for people.
func produced(c *store.Ceremony) [][2]string {
	out := [][2]string{}
	if x := c.Facts.BYOK; x != nil {
		out = append(out, [2]string{"KMS key", x.KeyARN}, [2]string{"Key spec", x.KeySpec},
			[2]string{"Wrapping", x.WrappingAlgorithm + " under an " + x.WrappingKeySpec + " key, SHA-256 " + x.WrappingKeySHA256},
			[2]string{"ParametersValidTo", report.FormatTime(x.ParametersValidTo)},
			[2]string{"Expiration", strings.TrimSpace(x.ExpirationModel + " " + report.FormatTime(x.MaterialValidTo))},
			[2]string{"Import type", orFirst(x.ImportType)},
			[2]string{"EncryptedKeyMaterial SHA-256", x.EncryptedMaterialSHA256})
		if x.MaterialFingerprint != "" {
			out = append(out, [2]string{"Material fingerprint", x.MaterialFingerprint})
		}
		if in := x.Import; in != nil {
			out = append(out, [2]string{"aws byok import", fmt.Sprintf("%s, key material %s, request %s, key %s", report.FormatTime(in.ImportedAt), in.KeyMaterialID, in.RequestID, in.KeyState)})
		}
	}
	if x := c.Facts.Certificate; x != nil {
		if x.CAARN != "" {
			out = append(out, [2]string{"AWS Private CA", x.CAARN})
		}
		out = append(out, [2]string{"Certificate", x.File + ", SHA-256 " + x.SHA256}, [2]string{"Subject", x.Subject},
			[2]string{"Serial", x.Serial}, [2]string{"Validity", report.FormatTime(x.NotBefore) + " to " + report.FormatTime(x.NotAfter)})
		if !x.ImportedAt.IsZero() {
			out = append(out, [2]string{"aws pca import-cert", report.FormatTime(x.ImportedAt)})
		}
	}
	return out
}

func orFirst(s string) string {
	if s == "" {
		return "first import"
	}
	return s
}

func summarize(r *Report, res *provenance.Result) Summary {
	s := Summary{Keys: len(r.Keys), CAs: len(r.CAs), Ceremonies: len(r.Ceremonies), Imports: map[provenance.Status]int{},
		CAImports: map[provenance.Status]int{}, BySeverity: map[provenance.Severity]int{}, FindingsIDs: map[string]int{}}
	for _, i := range res.Imports {
		s.Imports[i.Status]++
	}
	for _, i := range res.CAImports {
		s.CAImports[i.Status]++
	}
	for _, f := range res.Findings {
		s.BySeverity[f.Severity]++
		s.FindingsIDs[f.ID]++
	}
	for _, c := range r.Ceremonies {
		if c.Rehearsal {
			r.Rule.RehearsalsLoaded++
		}
	}
	return s
}
