package ceremony

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/paper"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

// signState is what a ca-signing or crl ceremony works with, rebuilt from the
// inputs and the transcript on resume.
type signState struct {
	issuer     *x509.Certificate
	csr        *x509.CertificateRequest
	original   *x509.Certificate    // the certificate to cross-sign
	previous   *x509.RevocationList // the last CRL, when the script names it
	counterDir string
	keyLabel   string
	keyID      []byte
	// built holds, per artefact, what its lint step fixed (serial, time, CRL
	// number and dates) and the SHA-256 of the linted to-be-signed bytes,
	// so the sign step rebuilds exactly what was confirmed.
	built map[string]*built
}

type built struct {
	serial     []byte
	at         time.Time
	number     *big.Int
	thisUpdate time.Time
	nextUpdate time.Time
	tbs        string
}

// Artefacts a signing ceremony produces.
const (
	artSubordinate = "subordinate"
	artCross       = "cross-certificate"
	artCRL         = "crl"
)

func signingPlan(s *script.Script) []*step {
	g := s.Signing
	plan := []*step{signingInputsStep(s), unlockStep("unlock the root key"), issuerKeyStep()}
	if g.Subordinate != nil {
		plan = append(plan, lintCertStep(artSubordinate), signCertStep(artSubordinate))
	}
	if g.CrossCertificate != nil {
		plan = append(plan, lintCertStep(artCross), signCertStep(artCross))
	}
	if g.CRL != nil {
		plan = append(plan, lintCRLStep(), signCRLStep())
	}
	return plan
}

func signingInputsStep(s *script.Script) *step {
	checks := []string{"The quorum record is well formed and matches the script.",
		"The root certificate is a self-signed CA certificate that has not expired."}
	g := s.Signing
	if g.Subordinate != nil {
		checks = append(checks, "The CSR's signature verifies; its key type and size are allowed by the profile; the profile's subject and validity fit the root (a not_after beyond the root's is refused).")
	}
	if g.CrossCertificate != nil {
		checks = append(checks, "The certificate to cross-sign is a CA certificate whose validity fits the root's.")
	}
	if g.CRL != nil {
		checks = append(checks, "The CRL number counter is readable and above the previous CRL's number; revocation times are not in the future.")
	}
	return &step{
		id: "inputs", title: "Inputs checked",
		do:      "Compare the SHA-256 of each input with the copy reviewed before the ceremony (the CSR's with what the subordinate CA's operator sent).",
		check:   strings.Join(checks, " "),
		record:  "Path, size and SHA-256 of every input; the CSR's subject, key and requested extensions (which the profile overrides).",
		confirm: admins, run: runSigningInputs,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			if err := sameInputs(en); err != nil {
				return err
			}
			if err := e.loadInputs(nil); err != nil {
				return err
			}
			var errs []error
			e.sign = e.loadSigningState(nil, time.Now(), false, func(path string, err error) { errs = append(errs, fmt.Errorf("%s: %w", path, err)) })
			return errors.Join(errs...)
		},
	}
}

// loadSigning reads and checks the signing inputs; every problem goes to bad
// with the script path it concerns. With r set, the inputs are recorded.
func (e *Engine) loadSigning(r *stepRun, now time.Time, bad func(path string, err error)) *signState {
	return e.loadSigningState(r, now, true, bad)
}

// loadSigningState reads the inputs; full adds the checks that depend on the
// time and on the CRL counter (skipped when a resumed ceremony rebuilds its
// state after those steps ran).
func (e *Engine) loadSigningState(r *stepRun, now time.Time, full bool, bad func(path string, err error)) *signState {
	g := e.s.Signing
	st := &signState{built: map[string]*built{}}
	read := func(path string, in script.Input) []byte {
		p := e.s.Resolve(in.Path)
		if r != nil {
			if _, err := r.input(p); err != nil {
				bad(path, err)
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			bad(path+".path", fmt.Errorf("cannot read %s: %w", p, err))
			return nil
		}
		return b
	}

	if raw := read("signing.issuer.certificate", g.Issuer.Certificate); raw != nil {
		cert, err := parseCertificate(raw)
		switch {
		case err != nil:
			bad("signing.issuer.certificate", err)
		case !cert.IsCA || !cert.BasicConstraintsValid:
			bad("signing.issuer.certificate", fmt.Errorf("%s (%s) is not a CA certificate", g.Issuer.Certificate.Path, cert.Subject))
		case cert.CheckSignatureFrom(cert) != nil:
			bad("signing.issuer.certificate", fmt.Errorf("%s (%s) is not a self-signed root certificate: its signature does not verify with its own key", g.Issuer.Certificate.Path, cert.Subject))
		case (g.Subordinate != nil || g.CrossCertificate != nil) && cert.KeyUsage&x509.KeyUsageCertSign == 0:
			bad("signing.issuer.certificate", fmt.Errorf("the root certificate's key usage does not allow signing certificates (keyCertSign)"))
		case g.CRL != nil && cert.KeyUsage&x509.KeyUsageCRLSign == 0:
			bad("signing.issuer.certificate", fmt.Errorf("the root certificate's key usage does not allow signing CRLs (cRLSign)"))
		case full && now.After(cert.NotAfter):
			bad("signing.issuer.certificate", fmt.Errorf("the root certificate expired at %s: it can no longer sign", cert.NotAfter.UTC().Format(time.RFC3339)))
		default:
			st.issuer = cert
		}
	}
	st.keyLabel = g.Issuer.KeyLabel
	// A throwaway serial: the checks below need a template, not the real
	// serial, which comes from the token's RNG in the lint step.
	probeSerial := []byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

	if sub := g.Subordinate; sub != nil {
		if raw := read("signing.subordinate.csr", sub.CSR); raw != nil {
			csr, err := certprofile.ParseCSR(raw)
			if err != nil {
				bad("signing.subordinate.csr", fmt.Errorf("%s: %w", sub.CSR.Path, err))
			} else {
				st.csr = csr
				if st.issuer != nil && full {
					if _, _, err := certprofile.Subordinate(csr, st.issuer, caProfile(sub.Profile), probeSerial, now); err != nil {
						bad("signing.subordinate", err)
					} else if publicEqual(csr.PublicKey, st.issuer.PublicKey) {
						bad("signing.subordinate.csr", errors.New("the CSR carries the root's own public key"))
					}
				}
			}
		}
	}
	if c := g.CrossCertificate; c != nil {
		if raw := read("signing.cross_certificate.certificate", c.Certificate); raw != nil {
			orig, err := parseCertificate(raw)
			if err != nil {
				bad("signing.cross_certificate.certificate", err)
			} else {
				st.original = orig
				if st.issuer != nil && full {
					if publicEqual(orig.PublicKey, st.issuer.PublicKey) {
						bad("signing.cross_certificate.certificate", errors.New("the certificate to cross-sign carries the root's own key"))
					} else if _, _, err := certprofile.CrossSign(orig, st.issuer, caProfile(c.Profile), probeSerial, now); err != nil {
						bad("signing.cross_certificate", err)
					}
				}
			}
		}
	}
	if c := g.CRL; c != nil {
		st.counterDir = e.s.Resolve(c.CounterDirectory)
		if fi, err := os.Stat(st.counterDir); err != nil || !fi.IsDir() {
			bad("signing.crl.counter_directory", fmt.Errorf("%s is not a directory on the output medium (is it mounted?)", st.counterDir))
		} else if full {
			next, err := certprofile.NextCRLNumber(st.counterDir)
			if err != nil {
				bad("signing.crl.counter_directory", err)
			}
			if c.Previous != nil {
				if raw := read("signing.crl.previous", *c.Previous); raw != nil {
					prev, err := parseCRL(raw)
					switch {
					case err != nil:
						bad("signing.crl.previous", err)
					case st.issuer != nil && prev.CheckSignatureFrom(st.issuer) != nil:
						bad("signing.crl.previous", fmt.Errorf("%s was not issued by this root (its signature does not verify with the root certificate)", c.Previous.Path))
					case next != nil && prev.Number != nil && next.Cmp(prev.Number) <= 0:
						bad("signing.crl.counter_directory", fmt.Errorf("the CRL number counter in %s would issue number %s, but the previous CRL already has number %s: the counter file is older than the last CRL; restore it from the last CRL ceremony's transcript", st.counterDir, next, prev.Number))
					default:
						st.previous = prev
					}
				}
			}
		}
		if full {
			for i, rv := range c.Revoked {
				if rv.RevokedAt.After(now) {
					bad(fmt.Sprintf("signing.crl.revoked[%d].revoked_at", i), fmt.Errorf("%s is in the future: a CRL lists revocations that have happened", rv.RevokedAt.UTC().Format(time.RFC3339)))
				}
			}
		}
	}
	return st
}

// sameInputs checks, when a ceremony resumes, that every input its inputs
// step recorded is still the same file: later steps rebuild their state
// from them.
func sameInputs(en transcript.Entry) error {
	for _, in := range en.Inputs {
		f, err := transcript.HashFile(in.Path, in.Path)
		if err != nil {
			return fmt.Errorf("input %s, recorded in entry %d, cannot be read: %w", in.Path, en.Seq, err)
		}
		if f.SHA256 != in.SHA256 {
			return fmt.Errorf("input %s changed since entry %d recorded it (SHA-256 %s, now %s): put the recorded file back to resume", in.Path, en.Seq, in.SHA256, f.SHA256)
		}
	}
	return nil
}

func parseCertificate(raw []byte) (*x509.Certificate, error) {
	der := raw
	if blk, _ := pem.Decode(raw); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("the file holds a PEM %q, not a CERTIFICATE", blk.Type)
		}
		der = blk.Bytes
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not a certificate (PEM or DER): %w", err)
	}
	return c, nil
}

func parseCRL(raw []byte) (*x509.RevocationList, error) {
	der := raw
	if blk, _ := pem.Decode(raw); blk != nil {
		der = blk.Bytes
	}
	c, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("not a CRL (PEM or DER): %w", err)
	}
	return c, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func pkixName(n script.Name) pkix.Name {
	name := pkix.Name{CommonName: n.CommonName}
	add := func(dst *[]string, v string) {
		if v != "" {
			*dst = []string{v}
		}
	}
	add(&name.Organization, n.Organization)
	add(&name.OrganizationalUnit, n.OrganizationalUnit)
	add(&name.Country, n.Country)
	add(&name.Province, n.Province)
	add(&name.Locality, n.Locality)
	return name
}

// caProfile turns a script profile into the certprofile profile.
func caProfile(p script.CAProfile) certprofile.Profile {
	out := certprofile.Profile{
		AcceptCSRSubject: p.AcceptCSRSubject,
		NotBefore:        p.NotBefore.UTC(),
		NotAfter:         p.NotAfter.UTC(),
		Validity:         time.Duration(p.ValidityDays) * 24 * time.Hour,
		MaxPathLen:       -1,
		DigitalSignature: p.DigitalSignature,
		CRLDistribution:  p.CRLDistribution,
		OCSPServers:      p.OCSPServers,
		IssuingCertURLs:  p.IssuingCertURLs,
		Policies:         p.Policies,
		PermittedDNS:     p.PermittedDNS,
		ExcludedDNS:      p.ExcludedDNS,
		AllowedKeys:      p.AllowedKeys,
	}
	if p.MaxPathLength != nil {
		out.MaxPathLen = *p.MaxPathLength
	}
	if p.Subject != nil {
		n := pkixName(*p.Subject)
		out.Subject = &n
	}
	return out
}

func spkiSHA256(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	s := sha256.Sum256(der)
	return s[:]
}

func runSigningInputs(ctx context.Context, r *stepRun) error {
	e := r.e
	if err := e.loadInputs(r); err != nil {
		return err
	}
	var errs []error
	st := e.loadSigning(r, time.Now(), func(path string, err error) { errs = append(errs, fmt.Errorf("%s: %w", path, err)) })
	if len(errs) > 0 {
		return fmt.Errorf("the inputs cannot be used, nothing was signed: %w", errors.Join(errs...))
	}
	e.sign = st
	var facts []Fact
	for _, f := range r.entry.Inputs {
		facts = append(facts, Fact{Label: f.Path, Value: fmt.Sprintf("SHA-256 %s (%d bytes)", f.SHA256, f.Size)})
	}
	r.detail("quorum set", e.record.SetID)
	fp := sha256.Sum256(st.issuer.Raw)
	r.detail("root certificate", st.issuer.Subject.String())
	r.detail("root certificate sha256", hex.EncodeToString(fp[:]))
	facts = append(facts, Fact{Label: "Root certificate", Value: st.issuer.Subject.String()},
		Fact{Label: "Root certificate SHA-256", Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])},
		Fact{Label: "Root valid until", Value: st.issuer.NotAfter.UTC().Format(time.RFC3339)})
	if csr := st.csr; csr != nil {
		kfp := spkiSHA256(csr.PublicKey)
		r.detail("csr subject", csr.Subject.String())
		r.detail("csr key", certprofile.KeyType(csr.PublicKey))
		r.detail("csr public key sha256", hex.EncodeToString(kfp))
		r.detail("csr signature", "verified with the CSR's own key")
		var ext []string
		for _, x := range csr.Extensions {
			ext = append(ext, x.Id.String())
		}
		if len(ext) > 0 {
			r.detail("csr requested extensions (ignored: the profile decides)", strings.Join(ext, ", "))
		}
		facts = append(facts,
			Fact{Label: "CSR subject", Value: csr.Subject.String()},
			Fact{Label: "CSR key", Value: certprofile.KeyType(csr.PublicKey) + " (allowed by the profile)"},
			Fact{Label: "CSR public key SHA-256", Value: hex.EncodeToString(kfp), Words: words.String(kfp)})
		if len(ext) > 0 {
			facts = append(facts, Fact{Label: "CSR asks for extensions", Value: strings.Join(ext, ", ") + ": ignored, the certificate is built from the profile"})
		}
	}
	if o := st.original; o != nil {
		ofp := sha256.Sum256(o.Raw)
		r.detail("certificate to cross-sign", o.Subject.String())
		r.detail("certificate to cross-sign sha256", hex.EncodeToString(ofp[:]))
		facts = append(facts, Fact{Label: "Certificate to cross-sign", Value: fmt.Sprintf("%s, valid %s to %s", o.Subject, o.NotBefore.UTC().Format(time.RFC3339), o.NotAfter.UTC().Format(time.RFC3339))},
			Fact{Label: "Its SHA-256", Value: hex.EncodeToString(ofp[:]), Words: words.String(ofp[:])})
	}
	if st.counterDir != "" {
		r.detail("crl number counter", filepath.Join(st.counterDir, certprofile.CRLCounterFile))
		if st.previous != nil {
			r.detail("previous crl number", st.previous.Number.String())
			facts = append(facts, Fact{Label: "Previous CRL", Value: fmt.Sprintf("number %s, next update %s", st.previous.Number, st.previous.NextUpdate.UTC().Format(time.RFC3339))})
		}
	}
	return r.confirmStep(ctx, "These are the inputs reviewed before the ceremony.", facts)
}

func issuerKeyStep() *step {
	return &step{
		id: "issuer-key", title: "Root key found",
		do:      "Nothing: the user logs in with the quorum-derived PIN and the engine finds the root key.",
		check:   "Exactly one private key on the token has the root certificate's public key.",
		record:  "The root key's label, ID, type and public key fingerprint.",
		confirm: admins, usesSecret: true,
		run: runIssuerKey, restore: restoreIssuerKey,
	}
}

func runIssuerKey(ctx context.Context, r *stepRun) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "find the root key"); err != nil {
		return err
	}
	k, err := e.issuerKey()
	if err != nil {
		return err
	}
	e.sign.keyLabel, e.sign.keyID = k.Label(), k.ID()
	fp := k.Fingerprint()
	r.detail("key label", k.Label())
	r.detail("key id", hex.EncodeToString(k.ID()))
	r.detail("key", k.String())
	r.detail("public key sha256", hex.EncodeToString(fp))
	r.detail("matches", "the root certificate's public key")
	return r.confirmStep(ctx, "The token holds the root key of the root certificate.", []Fact{
		{Label: "Root key", Value: k.String()},
		{Label: "Public key SHA-256", Value: hex.EncodeToString(fp), Words: words.String(fp)},
	})
}

func restoreIssuerKey(ctx context.Context, e *Engine, en transcript.Entry) error {
	id, err := hex.DecodeString(en.Detail("key id"))
	if err != nil {
		return err
	}
	e.sign.keyLabel, e.sign.keyID = en.Detail("key label"), id
	return nil
}

// issuerKey finds the root private key on the logged-in token: the one whose
// public key is the root certificate's.
func (e *Engine) issuerKey() (*hsm.Key, error) {
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	st := e.sign
	keys, err := tok.FindKeys(hsm.Filter{Label: st.keyLabel, ID: st.keyID, Class: hsm.ClassPrivateKey})
	if err != nil {
		return nil, err
	}
	var match []*hsm.Key
	for _, k := range keys {
		if k.Public() != nil && publicEqual(k.Public(), st.issuer.PublicKey) {
			match = append(match, k)
		}
	}
	where := "on the token"
	if st.keyLabel != "" {
		where = fmt.Sprintf("labelled %q on the token", st.keyLabel)
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no private key %s has the root certificate's public key (%d private keys looked at): is this the root's token, and the right certificate?", where, len(keys))
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("%d private keys %s have the root certificate's public key: name the key with signing.issuer.key_label", len(match), where)
}

func (e *Engine) signatureAlgorithm() x509.SignatureAlgorithm {
	if a := e.s.Signing.Issuer.SignatureAlgorithm; a != "" {
		return script.SignatureAlgorithms[a]
	}
	return e.sign.issuer.SignatureAlgorithm
}

// buildCert builds the certificate template of an artefact from the profile.
func (e *Engine) buildCert(art string, serial []byte, at time.Time) (*x509.Certificate, crypto.PublicKey, []string, certsign.Options, error) {
	g, st := e.s.Signing, e.sign
	var (
		tmpl  *x509.Certificate
		pub   crypto.PublicKey
		notes []string
		opt   certsign.Options
		err   error
	)
	switch art {
	case artSubordinate:
		tmpl, notes, err = certprofile.Subordinate(st.csr, st.issuer, caProfile(g.Subordinate.Profile), serial, at)
		pub, opt.Ignore = st.csr.PublicKey, g.Subordinate.Profile.IgnoreLints
	case artCross:
		tmpl, notes, err = certprofile.CrossSign(st.original, st.issuer, caProfile(g.CrossCertificate.Profile), serial, at)
		pub, opt.Ignore = st.original.PublicKey, g.CrossCertificate.Profile.IgnoreLints
	default:
		return nil, nil, nil, opt, fmt.Errorf("unknown artefact %q", art)
	}
	if err != nil {
		return nil, nil, nil, opt, err
	}
	tmpl.SignatureAlgorithm = e.signatureAlgorithm()
	return tmpl, pub, notes, opt, nil
}

func artTitle(art string) string {
	switch art {
	case artSubordinate:
		return "Subordinate CA certificate"
	case artCross:
		return "Cross-certificate"
	}
	return "CRL"
}

func lintCertStep(art string) *step {
	check := "The certificate is built from the script's profile (never from extensions a CSR requests), with a serial of 126 bits from the token's RNG, " +
		"validity within the root's; zlint finds no error in it (signed here only by a throwaway software key)."
	if art == artCross {
		check = "The cross-certificate carries the original's subject and key, within the original's and the root's validity, with a serial from the token's RNG; zlint finds no error in it (signed here only by a throwaway software key)."
	}
	return &step{
		id: "lint-" + art, title: artTitle(art) + " linted",
		do:      "Read the certificate's contents and the lint results; warnings are confirmed explicitly.",
		check:   check,
		record:  "Serial, issue time, SHA-256 of the to-be-signed bytes, zlint errors, warnings, notices and ignored lints, and notes such as validity clipping.",
		confirm: admins,
		run:     func(ctx context.Context, r *stepRun) error { return runLintCert(ctx, r, art) },
		restore: restoreBuilt(art),
	}
}

func runLintCert(ctx context.Context, r *stepRun, art string) error {
	e := r.e
	if err := e.loginAs(ctx, "user", "lint the "+strings.ToLower(artTitle(art))); err != nil {
		return err
	}
	tok, _ := e.token()
	k, err := e.issuerKey()
	if err != nil {
		return err
	}
	serial, err := tok.Random(16)
	if err != nil {
		return err
	}
	// Positive and a full 16 bytes: 126 bits from the token's RNG.
	serial[0] = serial[0]&0x7f | 0x40
	at := time.Now().UTC().Truncate(time.Second)
	tmpl, pub, notes, opt, err := e.buildCert(art, serial, at)
	if err != nil {
		return fmt.Errorf("nothing was signed: %w", err)
	}
	l, lerr := certsign.LintCertificate(tmpl, e.sign.issuer, pub, opt)
	if l != nil {
		recordLint(r, l.Results)
	}
	for _, n := range notes {
		r.detail("note", n)
	}
	if lerr != nil {
		return fmt.Errorf("the certificate fails linting and was not signed; fix the profile in the script and start a new ceremony: %w", lerr)
	}
	if !publicEqual(k.Public(), e.sign.issuer.PublicKey) {
		return errors.New("the token key is not the root certificate's")
	}
	tbs := sha256.Sum256(l.TBS())
	b := &built{serial: serial, at: at, tbs: hex.EncodeToString(tbs[:])}
	e.sign.built[art] = b
	r.detail("serial", hex.EncodeToString(serial))
	r.detail("issued at", at.Format(time.RFC3339))
	r.detail("tbs sha256", b.tbs)
	facts := certFacts(l.Preview)
	for _, n := range notes {
		facts = append(facts, Fact{Label: "Note", Value: n})
	}
	facts = append(facts, lintFacts(l.Results)...)
	statement := "The certificate contents are what the reviewed script specifies."
	if len(l.Results.Warnings) > 0 {
		statement += fmt.Sprintf(" The %d zlint warning(s) shown were read and are accepted.", len(l.Results.Warnings))
	}
	return r.confirmStep(ctx, statement, facts)
}

func recordLint(r *stepRun, res certsign.Results) {
	r.detail("lint errors", strings.Join(res.Errors, "; "))
	r.detail("lint warnings", strings.Join(res.Warnings, "; "))
	r.detail("lint notices", strings.Join(res.Notices, "; "))
	if len(res.Ignored) > 0 {
		r.detail("lint ignored by the profile", strings.Join(res.Ignored, "; "))
	}
}

func lintFacts(res certsign.Results) []Fact {
	facts := []Fact{{Label: "zlint", Value: fmt.Sprintf("no errors, %d warnings, %d notices, %d ignored by the profile", len(res.Warnings), len(res.Notices), len(res.Ignored))}}
	for _, w := range res.Warnings {
		facts = append(facts, Fact{Label: "Warning", Value: w})
	}
	for _, w := range res.Ignored {
		facts = append(facts, Fact{Label: "Ignored", Value: w})
	}
	return facts
}

func certFacts(t *x509.Certificate) []Fact {
	ku := []string{}
	for _, u := range []struct {
		bit  x509.KeyUsage
		name string
	}{{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageCertSign, "keyCertSign"}, {x509.KeyUsageCRLSign, "cRLSign"}} {
		if t.KeyUsage&u.bit != 0 {
			ku = append(ku, u.name)
		}
	}
	kfp := spkiSHA256(t.PublicKey)
	facts := []Fact{
		{Label: "Subject", Value: t.Subject.String()},
		{Label: "Issuer", Value: t.Issuer.String()},
		{Label: "Validity (UTC)", Value: t.NotBefore.UTC().Format("2006-01-02 15:04:05") + " to " + t.NotAfter.UTC().Format("2006-01-02 15:04:05")},
		{Label: "Serial", Value: hex.EncodeToString(t.SerialNumber.Bytes())},
		{Label: "Subject key", Value: certprofile.KeyType(t.PublicKey)},
		{Label: "Subject public key SHA-256", Value: hex.EncodeToString(kfp), Words: words.String(kfp)},
		{Label: "Key usage", Value: strings.Join(ku, ", ") + " (critical)"},
		{Label: "Basic constraints", Value: pathLen(t) + " (critical)"},
		{Label: "Subject key ID", Value: hex.EncodeToString(t.SubjectKeyId)},
		{Label: "Authority key ID", Value: hex.EncodeToString(t.AuthorityKeyId)},
		{Label: "Signature algorithm", Value: t.SignatureAlgorithm.String()},
	}
	if len(t.CRLDistributionPoints) > 0 {
		facts = append(facts, Fact{Label: "CRL distribution points", Value: strings.Join(t.CRLDistributionPoints, ", ")})
	}
	if len(t.IssuingCertificateURL)+len(t.OCSPServer) > 0 {
		facts = append(facts, Fact{Label: "Authority information access", Value: strings.Join(append(append([]string{}, t.IssuingCertificateURL...), t.OCSPServer...), ", ")})
	}
	if len(t.PolicyIdentifiers) > 0 {
		var ps []string
		for _, p := range t.PolicyIdentifiers {
			ps = append(ps, p.String())
		}
		facts = append(facts, Fact{Label: "Certificate policies", Value: strings.Join(ps, ", ")})
	}
	if len(t.PermittedDNSDomains)+len(t.ExcludedDNSDomains) > 0 {
		facts = append(facts, Fact{Label: "Name constraints (critical)", Value: fmt.Sprintf("permitted %v, excluded %v", t.PermittedDNSDomains, t.ExcludedDNSDomains)})
	}
	return facts
}

// restoreBuilt rebuilds what a lint step fixed from its transcript entry.
func restoreBuilt(art string) func(ctx context.Context, e *Engine, en transcript.Entry) error {
	return func(ctx context.Context, e *Engine, en transcript.Entry) error {
		b := &built{tbs: en.Detail("tbs sha256")}
		var err error
		if s := en.Detail("serial"); s != "" {
			if b.serial, err = hex.DecodeString(s); err != nil {
				return err
			}
		}
		parse := func(key string) time.Time {
			if err != nil || en.Detail(key) == "" {
				return time.Time{}
			}
			var t time.Time
			t, err = time.Parse(time.RFC3339, en.Detail(key))
			return t
		}
		b.at, b.thisUpdate, b.nextUpdate = parse("issued at"), parse("this update"), parse("next update")
		if err != nil {
			return err
		}
		if n := en.Detail("crl number"); n != "" {
			var ok bool
			if b.number, ok = new(big.Int).SetString(n, 10); !ok {
				return fmt.Errorf("entry %d: bad CRL number %q", en.Seq, n)
			}
		}
		if b.tbs == "" {
			return fmt.Errorf("entry %d (%s) records no to-be-signed hash", en.Seq, en.Step)
		}
		e.sign.built[art] = b
		return nil
	}
}

func signCertStep(art string) *step {
	st := &step{
		id: "sign-" + art, title: artTitle(art) + " signed",
		do:      "Nothing: the token signs the linted certificate; read the certificate fingerprint aloud.",
		check:   "The to-be-signed bytes are those linted and confirmed (same SHA-256); the token's signature verifies with the root certificate.",
		confirm: admins,
		run:     func(ctx context.Context, r *stepRun) error { return runSignCert(ctx, r, art) },
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			if fp, err := hex.DecodeString(en.Detail("certificate sha256")); err == nil {
				e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: artTitle(art), SHA256: fp})
			}
			return nil
		},
	}
	if art == artSubordinate {
		st.outputs = []string{"subordinate.pem", "chain.pem", "acm-pca-import.json"}
		st.record = "The subordinate certificate (PEM), the chain file (the root certificate) and the JSON for aws acm-pca import-certificate-authority-certificate, each with its SHA-256; the certificate's SHA-256 with PGP words."
	} else {
		st.outputs = []string{"cross-certificate.pem"}
		st.check += " The cross-certificate carries the original's subject and key within its validity."
		st.record = "The cross-certificate (PEM) with its SHA-256 and PGP words."
	}
	return st
}

func runSignCert(ctx context.Context, r *stepRun, art string) error {
	e := r.e
	b := e.sign.built[art]
	if b == nil {
		return fmt.Errorf("the %s was not linted", artTitle(art))
	}
	if err := e.loginAs(ctx, "user", "sign the "+strings.ToLower(artTitle(art))); err != nil {
		return err
	}
	k, err := e.issuerKey()
	if err != nil {
		return err
	}
	// Rebuild and lint again from what the lint step recorded: the linted
	// bytes must be in memory to compare, and a resumed ceremony has only
	// the transcript.
	tmpl, pub, _, opt, err := e.buildCert(art, b.serial, b.at)
	if err != nil {
		return err
	}
	l, err := certsign.LintCertificate(tmpl, e.sign.issuer, pub, opt)
	if err != nil {
		return err
	}
	if tbs := sha256.Sum256(l.TBS()); hex.EncodeToString(tbs[:]) != b.tbs {
		return fmt.Errorf("the certificate rebuilt for signing (TBS SHA-256 %x) is not the one linted and confirmed (%s); nothing was signed", tbs, b.tbs)
	}
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	der, cert, err := l.Sign(signer)
	if err != nil {
		return err
	}
	if art == artCross {
		if err := certprofile.CheckCrossCertificate(cert, e.sign.original); err != nil {
			return err
		}
	}
	fp := sha256.Sum256(der)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	facts := []Fact{{Label: artTitle(art) + " SHA-256", Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])},
		{Label: "Subject", Value: cert.Subject.String()}, {Label: "Serial", Value: hex.EncodeToString(cert.SerialNumber.Bytes())}}
	if art == artSubordinate {
		subPath, err := r.output("subordinate.pem", certPEM)
		if err != nil {
			return err
		}
		chainPath, err := r.output("chain.pem", certprofile.PEM(e.sign.issuer))
		if err != nil {
			return err
		}
		arn := e.s.Signing.Subordinate.ACMPCAARN
		doc, err := certprofile.ACMPCAJSON(arn, cert, e.sign.issuer)
		if err != nil {
			return err
		}
		jsonPath, err := r.output("acm-pca-import.json", doc)
		if err != nil {
			return err
		}
		cmd := fmt.Sprintf("aws acm-pca import-certificate-authority-certificate --cli-input-json file://%s", filepath.Base(jsonPath))
		if arn == "" {
			cmd = fmt.Sprintf("aws acm-pca import-certificate-authority-certificate --certificate-authority-arn CA_ARN --certificate fileb://%s --certificate-chain fileb://%s", filepath.Base(subPath), filepath.Base(chainPath))
		}
		r.detail("import into AWS Private CA", cmd)
		facts = append(facts, Fact{Label: "Import into AWS Private CA (connected machine)", Value: cmd})
	} else {
		if _, err := r.output("cross-certificate.pem", certPEM); err != nil {
			return err
		}
		r.detail("cross-certificate check", "subject and key are the original's; validity within the original's")
	}
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: artTitle(art), SHA256: fp[:]})
	r.detail("serial", hex.EncodeToString(cert.SerialNumber.Bytes()))
	r.detail("tbs sha256", b.tbs)
	r.detail("signature", "made by the token, verified with the root certificate")
	r.detail("certificate sha256", hex.EncodeToString(fp[:]))
	r.detail("certificate words", words.String(fp[:]))
	return r.confirmStep(ctx, "The certificate fingerprint was read aloud.", facts)
}

func lintCRLStep() *step {
	return &step{
		id: "lint-crl", title: "CRL linted",
		do:      "Read the CRL's contents (number, dates, revoked serials) and the lint results.",
		check:   "The CRL number is the counter's next number and above the previous CRL's; zlint finds no error in the CRL (signed here only by a throwaway software key).",
		record:  "CRL number, this update, next update, revoked serials with reasons, SHA-256 of the to-be-signed bytes, zlint findings.",
		confirm: admins, run: runLintCRL, restore: restoreBuilt(artCRL),
	}
}

// buildCRL builds the CRL template from the script and what the lint step fixed.
func (e *Engine) buildCRL(b *built) (*x509.RevocationList, certsign.Options, error) {
	c := e.s.Signing.CRL
	var revoked []certprofile.Revoked
	for _, rv := range c.Revoked {
		s, err := script.ParseSerial(rv.Serial)
		if err != nil {
			return nil, certsign.Options{}, err
		}
		revoked = append(revoked, certprofile.Revoked{Serial: new(big.Int).SetBytes(s), Time: rv.RevokedAt, Reason: script.CRLReasons[rv.Reason]})
	}
	tmpl, err := certprofile.CRL(b.number, b.thisUpdate, b.nextUpdate, revoked)
	if err != nil {
		return nil, certsign.Options{}, err
	}
	tmpl.SignatureAlgorithm = e.signatureAlgorithm()
	return tmpl, certsign.Options{Ignore: c.IgnoreLints}, nil
}

func runLintCRL(ctx context.Context, r *stepRun) error {
	e := r.e
	st := e.sign
	n, err := certprofile.NextCRLNumber(st.counterDir)
	if err != nil {
		return err
	}
	if st.previous != nil && st.previous.Number != nil && n.Cmp(st.previous.Number) <= 0 {
		return fmt.Errorf("the CRL number counter would issue %s but the previous CRL has %s: restore the counter file from the last CRL ceremony's transcript", n, st.previous.Number)
	}
	now := time.Now().UTC().Truncate(time.Second)
	b := &built{number: n, thisUpdate: now, nextUpdate: now.Add(time.Duration(e.s.Signing.CRL.NextUpdateDays) * 24 * time.Hour)}
	if b.nextUpdate.After(st.issuer.NotAfter) {
		b.nextUpdate = st.issuer.NotAfter
		r.detail("note", "next update clipped to the root certificate's end")
	}
	tmpl, opt, err := e.buildCRL(b)
	if err != nil {
		return err
	}
	l, lerr := certsign.LintCRL(tmpl, st.issuer, opt)
	if l != nil {
		recordLint(r, l.Results)
	}
	if lerr != nil {
		return fmt.Errorf("the CRL fails linting and was not signed; fix the script and start a new ceremony: %w", lerr)
	}
	tbs := sha256.Sum256(l.Preview.RawTBSRevocationList)
	b.tbs = hex.EncodeToString(tbs[:])
	st.built[artCRL] = b
	r.detail("crl number", n.String())
	r.detail("this update", b.thisUpdate.Format(time.RFC3339))
	r.detail("next update", b.nextUpdate.Format(time.RFC3339))
	r.detail("tbs sha256", b.tbs)
	facts := []Fact{
		{Label: "Issuer", Value: st.issuer.Subject.String()},
		{Label: "CRL number", Value: n.String()},
		{Label: "This update (UTC)", Value: b.thisUpdate.Format("2006-01-02 15:04:05")},
		{Label: "Next update (UTC)", Value: b.nextUpdate.Format("2006-01-02 15:04:05")},
		{Label: "Revoked certificates", Value: fmt.Sprint(len(tmpl.RevokedCertificateEntries))},
	}
	for _, rv := range e.s.Signing.CRL.Revoked {
		line := fmt.Sprintf("serial %s revoked %s, reason %s (%d)", rv.Serial, rv.RevokedAt.UTC().Format(time.RFC3339), rv.Reason, script.CRLReasons[rv.Reason])
		r.detail("revoked", line)
		facts = append(facts, Fact{Label: "Revoked", Value: line})
	}
	facts = append(facts, lintFacts(l.Results)...)
	return r.confirmStep(ctx, "The CRL contents are what the reviewed script specifies.", facts)
}

func signCRLStep() *step {
	return &step{
		id: "sign-crl", title: "CRL signed",
		do:      "Nothing: the token signs the linted CRL; read its fingerprint aloud.",
		check:   "The to-be-signed bytes are those linted (same SHA-256); the signature verifies with the root certificate; the counter on the output medium is advanced to this CRL's number.",
		record:  "The CRL (DER and PEM) with SHA-256 and PGP words, its number, and the counter file's new value.",
		confirm: admins, outputs: []string{"crl.der", "crl.pem"},
		run: runSignCRL,
		restore: func(ctx context.Context, e *Engine, en transcript.Entry) error {
			if fp, err := hex.DecodeString(en.Detail("crl sha256")); err == nil {
				e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "CRL", SHA256: fp})
			}
			return nil
		},
	}
}

func runSignCRL(ctx context.Context, r *stepRun) error {
	e := r.e
	st := e.sign
	b := st.built[artCRL]
	if b == nil {
		return errors.New("the CRL was not linted")
	}
	if err := e.loginAs(ctx, "user", "sign the CRL"); err != nil {
		return err
	}
	// The counter may be at this number already, when an interrupted attempt
	// of this step stored it; any other value means another CRL was issued
	// since the lint step, and this number must not be used twice.
	next, err := certprofile.NextCRLNumber(st.counterDir)
	if err != nil {
		return err
	}
	last := new(big.Int).Sub(next, big.NewInt(1))
	if last.Cmp(b.number) > 0 {
		return fmt.Errorf("the CRL number counter is at %s, past this CRL's number %s: another CRL was issued meanwhile; start a new ceremony", last, b.number)
	}
	k, err := e.issuerKey()
	if err != nil {
		return err
	}
	tmpl, opt, err := e.buildCRL(b)
	if err != nil {
		return err
	}
	l, err := certsign.LintCRL(tmpl, st.issuer, opt)
	if err != nil {
		return err
	}
	if tbs := sha256.Sum256(l.Preview.RawTBSRevocationList); hex.EncodeToString(tbs[:]) != b.tbs {
		return fmt.Errorf("the CRL rebuilt for signing (TBS SHA-256 %x) is not the one linted and confirmed (%s); nothing was signed", tbs, b.tbs)
	}
	signer, err := k.Signer()
	if err != nil {
		return err
	}
	der, crl, err := l.Sign(signer)
	if err != nil {
		return err
	}
	if crl.Number.Cmp(b.number) != 0 {
		return fmt.Errorf("the signed CRL carries number %s, not %s", crl.Number, b.number)
	}
	if _, err := r.output("crl.der", der); err != nil {
		return err
	}
	if _, err := r.output("crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})); err != nil {
		return err
	}
	if err := certprofile.StoreCRLNumber(st.counterDir, b.number); err != nil {
		return fmt.Errorf("the CRL was written but the counter could not be advanced; set %s to %s by hand: %w", filepath.Join(st.counterDir, certprofile.CRLCounterFile), b.number, err)
	}
	if err := syncDir(st.counterDir); err != nil {
		return err
	}
	fp := sha256.Sum256(der)
	e.fingerprints = append(e.fingerprints, paper.Fingerprint{Label: "CRL", SHA256: fp[:]})
	r.detail("crl number", b.number.String())
	r.detail("tbs sha256", b.tbs)
	r.detail("signature", "made by the token, verified with the root certificate")
	r.detail("counter file", fmt.Sprintf("%s now %s", filepath.Join(st.counterDir, certprofile.CRLCounterFile), b.number))
	r.detail("crl sha256", hex.EncodeToString(fp[:]))
	r.detail("crl words", words.String(fp[:]))
	return r.confirmStep(ctx, "The CRL fingerprint was read aloud.", []Fact{
		{Label: "CRL SHA-256", Value: hex.EncodeToString(fp[:]), Words: words.String(fp[:])},
		{Label: "CRL number", Value: b.number.String()},
		{Label: "Publish", Value: "copy the .crl.der file to every CRL distribution point named in the certificates"},
	})
}
