package provenance

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
)

const keyARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// byok is a byok-wrap ceremony held start..end after parameters issued at
// issued, wrapping for a material valid to validTo.
func byok(name string, issued, start, end, validTo time.Time) store.Ceremony {
	return store.Ceremony{FinalHash: strings.Repeat(name[len(name)-1:], 64), CeremonyID: name, Kind: "byok-wrap", Started: start, Ended: end,
		Facts: store.CeremonyFacts{BYOK: &store.BYOKFacts{KeyARN: keyARN, KeySpec: "SYMMETRIC_DEFAULT", WrappingAlgorithm: "RSA_AES_KEY_WRAP_SHA_256",
			WrappingKeySpec: "RSA_4096", ParametersValidTo: issued.Add(ParametersLifetime).Add(400 * time.Millisecond),
			ExpirationModel: "KEY_MATERIAL_EXPIRES", MaterialValidTo: validTo}}}
}

func params(id string, at time.Time) KMSEvent {
	return KMSEvent{EventID: id, Time: at, Name: "GetParametersForImport", KeyARN: keyARN, WrappingAlgorithm: "RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec: "RSA_4096"}
}

func imported(id string, at, validTo time.Time) KMSEvent {
	return KMSEvent{EventID: id, Time: at, Name: "ImportKeyMaterial", KeyARN: keyARN, ExpirationModel: "KEY_MATERIAL_EXPIRES", ValidTo: validTo, Principal: "arn:aws:iam::111122223333:user/alice"}
}

func finding(r *Result, id string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

var validTo = t0.AddDate(1, 0, 0)

// One key, one ceremony, one import: matched, with the parameters call
// that issued what the ceremony wrapped.
func TestMatchOneCeremony(t *testing.T) {
	c := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	r := Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0), imported("i1", t0.Add(3*time.Hour), validTo)}, nil, Options{AsOf: t0.AddDate(0, 1, 0)})
	if len(r.Imports) != 1 || r.Imports[0].Status != Matched || r.Imports[0].FinalHash != c.FinalHash || r.Imports[0].Parameters == nil || r.Imports[0].Parameters.EventID != "p1" {
		t.Fatalf("imports %+v", r.Imports)
	}
	if len(r.Findings) != 0 {
		t.Errorf("findings %+v", r.Findings)
	}
	if len(r.Ceremonies) != 1 || r.Ceremonies[0].State != "imported" || r.Ceremonies[0].Parameters != "p1" {
		t.Errorf("ceremonies %+v", r.Ceremonies)
	}
}

// An import nobody witnessed, beside a matched one: unmatched, by name.
func TestMatchImportOutsideCeremony(t *testing.T) {
	c := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	r := Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0), imported("i1", t0.Add(3*time.Hour), validTo),
		params("p2", t0.Add(48*time.Hour)), imported("i2", t0.Add(49*time.Hour), validTo)}, nil, Options{AsOf: t0.AddDate(0, 1, 0)})
	if r.Imports[0].Status != Matched || r.Imports[1].Status != Unmatched {
		t.Fatalf("imports %+v", r.Imports)
	}
	f := finding(r, FindingNoCeremony)
	if f == nil || f.EventIDs[0] != "i2" || f.Severity != High || !strings.Contains(f.Text, "parameters expired") {
		t.Fatalf("finding %+v", f)
	}
}

// Two ceremonies for one key, each with its own parameters: each import
// goes to the ceremony whose parameters it used.
func TestMatchTwoCeremoniesOneKey(t *testing.T) {
	a := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	day2 := t0.Add(30 * 24 * time.Hour)
	b := byok("ceremony-b", day2, day2.Add(time.Hour), day2.Add(2*time.Hour), validTo.AddDate(0, 1, 0))
	b.Facts.BYOK.ImportType = "NEW_KEY_MATERIAL"
	i2 := imported("i2", day2.Add(3*time.Hour), validTo.AddDate(0, 1, 0))
	i2.ImportType = "NEW_KEY_MATERIAL"
	r := Match([]store.Ceremony{a, b}, []KMSEvent{params("p1", t0), imported("i1", t0.Add(3*time.Hour), validTo), params("p2", day2), i2}, nil, Options{AsOf: day2.AddDate(0, 1, 0)})
	if r.Imports[0].FinalHash != a.FinalHash || r.Imports[1].FinalHash != b.FinalHash || r.Imports[0].Status != Matched || r.Imports[1].Status != Matched {
		t.Fatalf("imports %+v", r.Imports)
	}
	if r.Imports[1].Parameters.EventID != "p2" {
		t.Errorf("second import's parameters %+v", r.Imports[1].Parameters)
	}
}

// The same parameters wrapped by two ceremonies: the import fits both;
// ambiguous unless the KeyMaterialId recorded beside one decides.
func TestMatchParametersReused(t *testing.T) {
	a := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	b := byok("ceremony-b", t0, t0.Add(3*time.Hour), t0.Add(4*time.Hour), validTo)
	evs := []KMSEvent{params("p1", t0), imported("i1", t0.Add(5*time.Hour), validTo)}
	r := Match([]store.Ceremony{a, b}, evs, nil, Options{AsOf: t0.AddDate(0, 1, 0)})
	if r.Imports[0].Status != Ambiguous || len(r.Imports[0].Candidates) != 2 {
		t.Fatalf("imports %+v", r.Imports)
	}
	if f := finding(r, FindingAmbiguous); f == nil || len(f.FinalHashes) != 2 {
		t.Fatalf("findings %+v", r.Findings)
	}
	// With KeyMaterialId on both sides, the recorded import decides.
	b.Facts.BYOK.Import = &store.BYOKImport{KeyMaterialID: "km-b"}
	a.Facts.BYOK.Import = &store.BYOKImport{KeyMaterialID: "km-a"}
	evs[1].KeyMaterialID = "km-b"
	r = Match([]store.Ceremony{a, b}, evs, nil, Options{AsOf: t0.AddDate(0, 1, 0)})
	if r.Imports[0].Status != Matched || r.Imports[0].FinalHash != b.FinalHash {
		t.Fatalf("with KeyMaterialId: %+v", r.Imports)
	}
	// a's recorded import is not in the logs: said so.
	if f := finding(r, FindingImportNotInLogs); f == nil || f.FinalHashes[0] != a.FinalHash {
		t.Errorf("findings %+v", r.Findings)
	}
}

// An import after the ceremony's parameters expired cannot carry its
// material (AWS refuses an expired import token): not matched, and the
// ceremony is reported as never imported.
func TestMatchImportAfterParametersExpired(t *testing.T) {
	c := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	late := imported("i1", t0.Add(ParametersLifetime+time.Minute), validTo)
	r := Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0), late}, nil, Options{AsOf: t0.AddDate(0, 1, 0)})
	if r.Imports[0].Status != Unmatched || !strings.Contains(strings.Join(r.Imports[0].Reasons, ";"), "expired") {
		t.Fatalf("imports %+v", r.Imports)
	}
	f := finding(r, FindingNotImported)
	if f == nil || !strings.Contains(f.Text, "never imported") || r.Ceremonies[0].State != "parameters expired" {
		t.Fatalf("findings %+v ceremonies %+v", r.Findings, r.Ceremonies)
	}
	// One second before expiry still matches.
	ok := imported("i1", t0.Add(ParametersLifetime), validTo)
	if r := Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0), ok}, nil, Options{}); r.Imports[0].Status != Matched {
		t.Fatalf("import at the expiry: %+v", r.Imports)
	}
}

// The laptop's clock is a few minutes ahead of AWS's: the ceremony seems
// to end after the import. Within the skew it matches; beyond it, not.
func TestMatchClockSkew(t *testing.T) {
	importAt := t0.Add(2 * time.Hour)
	c := byok("ceremony-a", t0, t0.Add(time.Hour), importAt.Add(7*time.Minute), validTo) // laptop 7 minutes fast
	evs := []KMSEvent{params("p1", t0), imported("i1", importAt, validTo)}
	if r := Match([]store.Ceremony{c}, evs, nil, Options{}); r.Imports[0].Status != Matched {
		t.Fatalf("7 minutes of skew with the default 15: %+v", r.Imports)
	}
	r := Match([]store.Ceremony{c}, evs, nil, Options{Skew: 5 * time.Minute})
	if r.Imports[0].Status != Unmatched || !strings.Contains(r.Imports[0].Reasons[0], "after the import") {
		t.Fatalf("7 minutes of skew with 5 allowed: %+v", r.Imports)
	}
	// The parameters' expiry is AWS's own clock: a call 90 s off the
	// 24 hours is still the one that issued them; 5 minutes off is not.
	evs[0].Time = t0.Add(90 * time.Second)
	if r := Match([]store.Ceremony{c}, evs, nil, Options{}); r.Imports[0].Parameters == nil {
		t.Error("parameters call 90 s off not found")
	}
	evs[0].Time = t0.Add(5 * time.Minute)
	if r := Match([]store.Ceremony{c}, evs, nil, Options{}); r.Imports[0].Parameters != nil || finding(r, FindingParamsNotInLogs) == nil {
		t.Errorf("parameters call 5 minutes off taken: %+v", r.Imports[0].Parameters)
	}
}

// What the import says differs from what the ceremony wrapped.
func TestMatchMismatch(t *testing.T) {
	c := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	for _, tc := range []struct {
		name string
		edit func(p, i *KMSEvent)
		want string
	}{
		{"validTo", func(p, i *KMSEvent) { i.ValidTo = validTo.Add(time.Hour) }, "validTo"},
		{"expiration", func(p, i *KMSEvent) { i.ExpirationModel, i.ValidTo = "KEY_MATERIAL_DOES_NOT_EXPIRE", time.Time{} }, "expiration model"},
		{"algorithm", func(p, i *KMSEvent) { p.WrappingAlgorithm = "RSAES_OAEP_SHA_256" }, "RSAES_OAEP_SHA_256"},
		{"import type", func(p, i *KMSEvent) { i.ImportType = "NEW_KEY_MATERIAL" }, "import type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, i := params("p1", t0), imported("i1", t0.Add(3*time.Hour), validTo)
			tc.edit(&p, &i)
			r := Match([]store.Ceremony{c}, []KMSEvent{p, i}, nil, Options{})
			f := finding(r, FindingDiffers)
			if r.Imports[0].Status != Mismatch || f == nil || !strings.Contains(f.Text, tc.want) || f.FinalHashes[0] != c.FinalHash {
				t.Fatalf("imports %+v findings %+v", r.Imports, r.Findings)
			}
		})
	}
}

// A rehearsal transcript is never provenance.
func TestMatchRehearsal(t *testing.T) {
	c := byok("rehearsal-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	c.Rehearsal = true
	r := Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0), imported("i1", t0.Add(3*time.Hour), validTo)}, nil, Options{})
	if r.Imports[0].Status != Rehearsal || finding(r, FindingRehearsal) == nil || finding(r, FindingNotImported) != nil {
		t.Fatalf("imports %+v findings %+v", r.Imports, r.Findings)
	}
}

// A ceremony whose import does not appear: failed, pending, not ingested.
func TestMatchCeremonyNotImported(t *testing.T) {
	c := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), validTo)
	failed := imported("i1", t0.Add(3*time.Hour), validTo)
	failed.ErrorCode = "ExpiredImportTokenException"
	r := Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0), failed}, nil, Options{AsOf: t0.AddDate(0, 1, 0)})
	if f := finding(r, FindingNotImported); f == nil || !strings.Contains(f.Text, "ExpiredImportTokenException") || f.EventIDs[0] != "i1" {
		t.Fatalf("failed import: %+v", r.Findings)
	}
	r = Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0)}, nil, Options{AsOf: t0.Add(5 * time.Hour)})
	if f := finding(r, FindingNotImported); f == nil || f.Severity != Info || r.Ceremonies[0].State != "pending" {
		t.Fatalf("pending: %+v", r.Findings)
	}
	r = Match([]store.Ceremony{c}, []KMSEvent{params("p1", t0)}, nil, Options{AsOf: t0.AddDate(0, 1, 0),
		Covered: func(string, time.Time, time.Time) bool { return false }})
	if f := finding(r, FindingNotImported); f == nil || !strings.Contains(f.Text, "incomplete") {
		t.Fatalf("not ingested: %+v", r.Findings)
	}
}

// Material expiring within the warning, expired, deleted.
func TestMatchMaterialFindings(t *testing.T) {
	c := byok("ceremony-a", t0, t0.Add(time.Hour), t0.Add(2*time.Hour), t0.AddDate(0, 0, 40))
	evs := []KMSEvent{params("p1", t0), imported("i1", t0.Add(3*time.Hour), t0.AddDate(0, 0, 40))}
	if r := Match([]store.Ceremony{c}, evs, nil, Options{AsOf: t0.AddDate(0, 0, 20)}); finding(r, FindingExpiring) == nil {
		t.Errorf("expiring: %+v", r.Findings)
	}
	if r := Match([]store.Ceremony{c}, evs, nil, Options{AsOf: t0.AddDate(0, 0, 50)}); finding(r, FindingExpired) == nil {
		t.Errorf("expired: %+v", r.Findings)
	}
	evs = append(evs, KMSEvent{EventID: "d1", Time: t0.AddDate(0, 0, 5), Name: "DeleteImportedKeyMaterial", KeyARN: keyARN})
	if r := Match([]store.Ceremony{c}, evs, nil, Options{AsOf: t0.AddDate(0, 0, 6)}); finding(r, FindingDeleted) == nil || finding(r, FindingExpiring) != nil {
		t.Errorf("deleted: %+v", r.Findings)
	}
}

func TestSameKey(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{keyARN, keyARN, true},
		{keyARN, "1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{keyARN, strings.Replace(keyARN, "111122223333", "444455556666", 1), false},
		{keyARN, "", false},
	} {
		if got := SameKey(tc.a, tc.b); got != tc.want {
			t.Errorf("SameKey(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// Sub-CA certificates: matched by CA and time order, the PEM's length
// checked where CloudTrail states it; an installation without ceremony.
func TestMatchCA(t *testing.T) {
	ca := "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/11223344-1234-1122-2233-112233445566"
	c := store.Ceremony{FinalHash: strings.Repeat("c", 64), CeremonyID: "sub-ca", Kind: "ca-signing", Started: t0.Add(time.Hour), Ended: t0.Add(2 * time.Hour),
		Facts: store.CeremonyFacts{Certificate: &store.CertFacts{CAARN: ca, Size: 1257, SHA256: "ab", File: "x.subordinate.pem"}}}
	raw := func(n int) string {
		return `{"requestParameters":{"certificateAuthorityArn":"` + ca + `","certificate":{"hb":[45,45],"limit":` + strconv.Itoa(n) + `}}}`
	}
	pca := []store.PCAEvent{
		{EventID: "csr", Time: t0, Name: "GetCertificateAuthorityCsr", CAARN: ca, Raw: "{}"},
		{EventID: "imp", Time: t0.Add(3 * time.Hour), Name: "ImportCertificateAuthorityCertificate", CAARN: ca, Raw: raw(1257)},
	}
	r := Match([]store.Ceremony{c}, nil, pca, Options{})
	if len(r.CAImports) != 1 || r.CAImports[0].Status != Matched || r.CAImports[0].CSREventID != "csr" || len(r.Findings) != 0 {
		t.Fatalf("CA imports %+v findings %+v", r.CAImports, r.Findings)
	}
	pca[1].Raw = raw(1300)
	if r := Match([]store.Ceremony{c}, nil, pca, Options{}); r.CAImports[0].Status != Mismatch || finding(r, FindingCADiffers) == nil {
		t.Fatalf("length differs: %+v", r.CAImports)
	}
	// Installed before the ceremony ended (beyond the skew): not its certificate.
	pca[1].Time, pca[1].Raw = t0.Add(90*time.Minute), raw(1257)
	r = Match([]store.Ceremony{c}, nil, pca, Options{})
	if r.CAImports[0].Status != Unmatched || finding(r, FindingCANoCeremony) == nil || finding(r, FindingCANotImported) == nil {
		t.Fatalf("before the ceremony: %+v %+v", r.CAImports, r.Findings)
	}
}
