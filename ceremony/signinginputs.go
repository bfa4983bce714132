package ceremony

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

// The inputs of a ca-signing or crl ceremony, and the root key that signs:
// the steps before the signing path (signing.go) starts.

// signState is what a ca-signing or crl ceremony works with, rebuilt from the
// inputs and the transcript on resume.
type signState struct {
	issuer     *x509.Certificate
	csr        *x509.CertificateRequest
	original   *x509.Certificate    // the certificate to cross-sign
	previous   *x509.RevocationList // the last CRL, when the script names it
	counterDir string
	// key is the root key: its label from the script (key_label, optional)
	// until the issuer-key step found it; then its label and ID.
	key keyRef
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
			return e.restoreInputs(en, func(bad func(string, error)) { e.sign = e.loadSigningState(nil, time.Now(), false, bad) })
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
	st := &signState{}
	read := func(path string, in script.Input) []byte { return e.readInput(r, path, in, bad) }

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
	st.key = keyRef{Label: g.Issuer.KeyLabel}
	// A throwaway serial: the checks below need a template, not the real
	// serial, which comes from the token's RNG in the lint step.
	probeSerial := []byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

	if sub := g.Subordinate; sub != nil {
		if raw := read("signing.subordinate.csr", sub.CSR); raw != nil {
			csr, err := certprofile.ParseCSRWith(raw, certprofile.CSRPolicy{AllowSHA1: sub.AllowSHA1CSR})
			if err != nil {
				bad("signing.subordinate.csr", fmt.Errorf("%s: %w", sub.CSR.Path, err))
			} else {
				st.csr = csr
				if st.issuer != nil && full {
					if _, _, err := certprofile.Subordinate(csr, st.issuer, caProfile(sub.Profile), probeSerial, now); err != nil {
						bad("signing.subordinate", err)
					} else if certsign.SamePublicKey(csr.PublicKey, st.issuer.PublicKey) {
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
					if certsign.SamePublicKey(orig.PublicKey, st.issuer.PublicKey) {
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

func runSigningInputs(ctx context.Context, r *stepRun) error {
	e := r.e
	var ps problems
	e.loadInputs(r, ps.add)
	st := e.loadSigning(r, time.Now(), ps.add)
	if err := ps.err(); err != nil {
		return fmt.Errorf("the inputs cannot be used, nothing was signed: %w", err)
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
		r.detail("csr signature", fmt.Sprintf("%s, verified with the CSR's own key", csr.SignatureAlgorithm))
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
	e.sign.key = refOf(k)
	fp := k.Fingerprint()
	r.detail("key label", k.Label())
	r.detail("key id", hex.EncodeToString(k.ID()))
	r.detail("key", k.String())
	r.detail("public key sha256", hex.EncodeToString(fp))
	r.detail("matches", "the root certificate's public key")
	if err := e.sign.key.record(r); err != nil {
		return err
	}
	return r.confirmStep(ctx, "The token holds the root key of the root certificate.", []Fact{
		{Label: "Root key", Value: k.String()},
		{Label: "Public key SHA-256", Value: hex.EncodeToString(fp), Words: words.String(fp)},
	})
}

func restoreIssuerKey(ctx context.Context, e *Engine, en transcript.Entry) error {
	return e.sign.key.restore(en)
}

// issuerKey finds the root private key on the logged-in token: the one whose
// public key is the root certificate's.
func (e *Engine) issuerKey() (*hsm.Key, error) {
	tok, err := e.token()
	if err != nil {
		return nil, err
	}
	st := e.sign
	keys, err := tok.FindKeys(st.key.filter(hsm.ClassPrivateKey))
	if err != nil {
		return nil, err
	}
	var match []*hsm.Key
	for _, k := range keys {
		if k.Public() != nil && certsign.SamePublicKey(k.Public(), st.issuer.PublicKey) {
			match = append(match, k)
		}
	}
	where := "on the token"
	if st.key.Label != "" {
		where = fmt.Sprintf("labelled %q on the token", st.key.Label)
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

// lintBeforeAnyone lints, when a ceremony is planned or about to start, the
// certificates the script will have the root sign, built from the inputs
// with a throwaway key and a throwaway serial exactly as the lint step will
// build them. A profile zlint refuses (an AWS Private CA CSR's OU taken with
// accept_csr_subject: true, say) is reported now, with the one thing to do,
// instead of after the custodians unlocked the quorum.
func (e *Engine) lintBeforeAnyone(st *signState, now time.Time, bad func(path string, err error)) {
	g := e.s.Signing
	if st.issuer == nil {
		return
	}
	saved := e.sign
	e.sign = st
	defer func() { e.sign = saved }()
	probe := &certLint{Serial: []byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, IssuedAt: now.UTC().Truncate(time.Second)}
	check := func(path string, a *artefact, profile script.CAProfile) {
		tmpl, opt, _, err := a.build(e, nil, probe)
		if err != nil {
			return // reported by the input checks
		}
		_, err = certsign.Lint(tmpl, opt)
		var le *certsign.LintError
		if !errors.As(err, &le) {
			return
		}
		do := "edit the script's profile so the certificate passes, or name the lint in ignore_lints if this private PKI does not follow it, then have the script reviewed again"
		for _, l := range le.Results.Errors {
			if strings.HasPrefix(l, "e_subj_orgunit_in_ca_cert") && profile.AcceptCSRSubject {
				do = "edit the script: give " + path + ".subject (without an organizational_unit) instead of accept_csr_subject: true, since this CSR's subject carries an OU (AWS Private CA CSRs do), then have the script reviewed again"
			}
		}
		bad(path, fmt.Errorf("the %s this profile makes from these inputs fails zlint (%s): nothing can be signed, and no one needs to be called in for it yet: %s",
			strings.ToLower(a.title), strings.Join(le.Results.Errors, "; "), do))
	}
	if sub := g.Subordinate; sub != nil && st.csr != nil {
		check("signing.subordinate.profile", subordinateCertificate, sub.Profile)
	}
	if c := g.CrossCertificate; c != nil && st.original != nil {
		check("signing.cross_certificate.profile", crossCertificate, c.Profile)
	}
}
