package ceremony

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/certsign"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/words"
	"github.com/keyceremony/keyceremony/hsm"
)

// artefact is one thing the root key signs. The lint and sign steps
// (signing.go) are the same for every artefact; its entry in the table below
// says what is built, what the sign step writes, and what is checked.
type artefact struct {
	id    string // the steps are lint-<id> and sign-<id>
	title string // "Root certificate", ...; also the fingerprint's label on the transcript
	crl   bool
	// lint and sign describe the two steps for people.
	lint, sign stepText
	// outputs are the files the sign step writes (names after the prefix).
	outputs []string
	// fingerprintFact labels the fingerprint read aloud after signing;
	// verifiedWith says what the token's signature was checked with.
	fingerprintFact, verifiedWith string
	// lintWithoutToken: the lint step needs neither a login nor the key.
	lintWithoutToken bool

	// newRecord makes an empty lint record of the artefact's kind.
	newRecord func() lintRecord
	// key finds the signing key on the logged-in token.
	key func(e *Engine) (*hsm.Key, error)
	// fix decides, in the lint step, what the sign step must reuse: a serial
	// from the token's RNG and the issue time, or the CRL number and dates.
	fix func(r *stepRun) (lintRecord, error)
	// build makes the template from the script, the inputs and the record;
	// notes (validity clipped, CSR extensions ignored) are shown and recorded.
	build func(e *Engine, k *hsm.Key, rec lintRecord) (tmpl certsign.Template, opt certsign.Options, notes []string, err error)
	// facts are what the lint step shows of the linted object.
	facts func(r *stepRun, l *certsign.Linted, rec lintRecord) []Fact
	// beforeSign, when set, checks that signing is still right.
	beforeSign func(e *Engine, rec lintRecord) error
	// write checks what the token signed and writes the outputs; the facts
	// it returns follow the fingerprint in the sign step's confirmation.
	write func(r *stepRun, rec lintRecord, s *certsign.Signed) ([]Fact, error)
}

// stepText is what a step tells people: what to do, what is checked, what
// is recorded.
type stepText struct{ do, check, record string }

// noun names the kind of artefact in detail keys, label in sentences.
func (a *artefact) noun() string {
	if a.crl {
		return "crl"
	}
	return "certificate"
}

func (a *artefact) label() string {
	if a.crl {
		return "CRL"
	}
	return "certificate"
}

const (
	lintCertDo   = "Read the certificate's contents and the lint results; warnings are confirmed explicitly."
	signCertDo   = "Nothing: the token signs the linted certificate; read the certificate fingerprint aloud."
	signCertChk  = "The to-be-signed bytes are those linted and confirmed (same SHA-256); the token's signature verifies with the root certificate."
	lintCARecord = "Serial, issue time, SHA-256 of the to-be-signed bytes, zlint errors, warnings, notices and ignored lints, and notes such as validity clipping."
)

// The artefacts. A root-generation ceremony signs the root certificate; a
// ca-signing ceremony a subordinate CA certificate, a cross-certificate and
// the CRL, as its script asks; a crl ceremony the CRL.
var (
	rootCertificate = &artefact{
		// Its steps keep the ids of the first version (lint-certificate,
		// sign-certificate), which transcripts name.
		id: "certificate", title: "Root certificate",
		lint: stepText{do: lintCertDo,
			check:  "The certificate built from the script's profile, with a serial from the token's RNG, has no zlint error; it is signed here only by a throwaway software key.",
			record: "Serial, SHA-256 of the to-be-signed bytes, zlint errors, warnings, notices and ignored lints."},
		sign: stepText{do: signCertDo,
			check:  "The to-be-signed bytes are those linted (same SHA-256); the signature verifies with the root public key.",
			record: "Certificate (PEM and DER), fingerprints file, certificate SHA-256 with PGP words."},
		outputs:         []string{"cert.pem", "cert.der", "fingerprints.txt"},
		fingerprintFact: "Certificate SHA-256", verifiedWith: "the root public key",
		newRecord: newCertLint, key: (*Engine).rootKey, fix: fixCertificate,
		build: buildRoot, facts: rootFacts, write: writeRoot,
	}

	subordinateCertificate = &artefact{
		id: "subordinate", title: "Subordinate CA certificate",
		lint: stepText{do: lintCertDo, record: lintCARecord,
			check: "The certificate is built from the script's profile (never from extensions a CSR requests), with a serial of 126 bits from the token's RNG, " +
				"validity within the root's; zlint finds no error in it (signed here only by a throwaway software key)."},
		sign: stepText{do: signCertDo, check: signCertChk,
			record: "The subordinate certificate (PEM), the chain file (the root certificate) and the JSON for aws acm-pca import-certificate-authority-certificate, each with its SHA-256; the certificate's SHA-256 with PGP words."},
		outputs:         []string{"subordinate.pem", "chain.pem", "acm-pca-import.json"},
		fingerprintFact: "Subordinate CA certificate SHA-256", verifiedWith: "the root certificate",
		newRecord: newCertLint, key: (*Engine).issuerKey, fix: fixCertificate,
		build: buildSubordinate, facts: caFacts, write: writeSubordinate,
	}

	crossCertificate = &artefact{
		id: "cross-certificate", title: "Cross-certificate",
		lint: stepText{do: lintCertDo, record: lintCARecord,
			check: "The cross-certificate carries the original's subject and key, within the original's and the root's validity, with a serial from the token's RNG; zlint finds no error in it (signed here only by a throwaway software key)."},
		sign: stepText{do: signCertDo,
			check:  signCertChk + " The cross-certificate carries the original's subject and key within its validity.",
			record: "The cross-certificate (PEM) with its SHA-256 and PGP words."},
		outputs:         []string{"cross-certificate.pem"},
		fingerprintFact: "Cross-certificate SHA-256", verifiedWith: "the root certificate",
		newRecord: newCertLint, key: (*Engine).issuerKey, fix: fixCertificate,
		build: buildCross, facts: caFacts, write: writeCross,
	}

	rootCRL = &artefact{
		id: "crl", title: "CRL", crl: true, lintWithoutToken: true,
		lint: stepText{do: "Read the CRL's contents (number, dates, revoked serials) and the lint results.",
			check:  "The CRL number is the counter's next number and above the previous CRL's; zlint finds no error in the CRL (signed here only by a throwaway software key).",
			record: "CRL number, this update, next update, revoked serials with reasons, SHA-256 of the to-be-signed bytes, zlint findings."},
		sign: stepText{do: "Nothing: the token signs the linted CRL; read its fingerprint aloud.",
			check:  "The to-be-signed bytes are those linted (same SHA-256); the signature verifies with the root certificate; the counter on the output medium is advanced to this CRL's number.",
			record: "The CRL (DER and PEM) with SHA-256 and PGP words, its number, and the counter file's new value."},
		outputs:         []string{"crl.der", "crl.pem"},
		fingerprintFact: "CRL SHA-256", verifiedWith: "the root certificate",
		newRecord: func() lintRecord { return &crlLint{} }, key: (*Engine).issuerKey, fix: fixCRL,
		build: buildCRL, facts: crlFacts, beforeSign: counterStillAt, write: writeCRL,
	}
)

func newCertLint() lintRecord { return &certLint{} }

// fixCertificate draws the serial (the token's RNG mixed with the host's:
// hsm.RandomMixed) and takes the time.
func fixCertificate(r *stepRun) (lintRecord, error) {
	tok, err := r.e.token()
	if err != nil {
		return nil, err
	}
	serial, err := tok.RandomMixed(16)
	if err != nil {
		return nil, err
	}
	// Positive and a full 16 bytes: 126 random bits.
	serial[0] = serial[0]&0x7f | 0x40
	return &certLint{Serial: serial, IssuedAt: time.Now().UTC().Truncate(time.Second)}, nil
}

// buildRoot builds the root certificate from the script's profile. Its
// validity is the script's; the issue time is not used.
func buildRoot(e *Engine, k *hsm.Key, rec lintRecord) (certsign.Template, certsign.Options, []string, error) {
	c := e.s.Certificate
	tmpl, err := certprofile.Root(pkixName(c.Subject), c.NotBefore, c.NotAfter, *c.MaxPathLength, k.Public(), rec.(*certLint).Serial)
	if err != nil {
		return certsign.Template{}, certsign.Options{}, nil, err
	}
	tmpl.SignatureAlgorithm = e.s.SignatureAlgorithm()
	var notes []string
	if e.opt.Rehearse {
		certprofile.MarkRehearsal(tmpl)
		notes = append(notes, "rehearsal: REHEARSAL in the subject's common name and organization, and the rehearsal policy "+certprofile.RehearsalPolicy.String())
	}
	return certsign.Certificate(tmpl, nil, k.Public()), certsign.Options{Ignore: c.IgnoreLints}, notes, nil
}

func buildSubordinate(e *Engine, _ *hsm.Key, rec lintRecord) (certsign.Template, certsign.Options, []string, error) {
	p, st, f := e.s.Signing.Subordinate.Profile, e.sign, rec.(*certLint)
	tmpl, notes, err := certprofile.Subordinate(st.csr, st.issuer, caProfile(p), f.Serial, f.IssuedAt)
	if err != nil {
		return certsign.Template{}, certsign.Options{}, nil, err
	}
	tmpl.SignatureAlgorithm = e.signatureAlgorithm()
	return certsign.Certificate(tmpl, st.issuer, st.csr.PublicKey), certsign.Options{Ignore: p.IgnoreLints}, notes, nil
}

func buildCross(e *Engine, _ *hsm.Key, rec lintRecord) (certsign.Template, certsign.Options, []string, error) {
	p, st, f := e.s.Signing.CrossCertificate.Profile, e.sign, rec.(*certLint)
	tmpl, notes, err := certprofile.CrossSign(st.original, st.issuer, caProfile(p), f.Serial, f.IssuedAt)
	if err != nil {
		return certsign.Template{}, certsign.Options{}, nil, err
	}
	tmpl.SignatureAlgorithm = e.signatureAlgorithm()
	return certsign.Certificate(tmpl, st.issuer, st.original.PublicKey), certsign.Options{Ignore: p.IgnoreLints}, notes, nil
}

// fixCRL takes the counter's next number, checked against the previous CRL,
// and the dates: now, and now + next_update_days clipped to the root's end.
func fixCRL(r *stepRun) (lintRecord, error) {
	e := r.e
	st := e.sign
	n, err := certprofile.NextCRLNumber(st.counterDir)
	if err != nil {
		return nil, err
	}
	if st.previous != nil && st.previous.Number != nil && n.Cmp(st.previous.Number) <= 0 {
		return nil, fmt.Errorf("the CRL number counter would issue %s but the previous CRL has %s: restore the counter file from the last CRL ceremony's transcript", n, st.previous.Number)
	}
	now := time.Now().UTC().Truncate(time.Second)
	c := &crlLint{Number: bigInt{n}, ThisUpdate: now, NextUpdate: now.Add(time.Duration(e.s.Signing.CRL.NextUpdateDays) * 24 * time.Hour)}
	if c.NextUpdate.After(st.issuer.NotAfter) {
		c.NextUpdate = st.issuer.NotAfter
		r.detail("note", "next update clipped to the root certificate's end")
	}
	return c, nil
}

// buildCRL builds the CRL from the script and what the lint step fixed.
func buildCRL(e *Engine, _ *hsm.Key, rec lintRecord) (certsign.Template, certsign.Options, []string, error) {
	c, f := e.s.Signing.CRL, rec.(*crlLint)
	var revoked []certprofile.Revoked
	for _, rv := range c.Revoked {
		s, err := script.ParseSerial(rv.Serial)
		if err != nil {
			return certsign.Template{}, certsign.Options{}, nil, err
		}
		revoked = append(revoked, certprofile.Revoked{Serial: new(big.Int).SetBytes(s), Time: rv.RevokedAt, Reason: script.CRLReasons[rv.Reason]})
	}
	tmpl, err := certprofile.CRL(f.Number.Int, f.ThisUpdate, f.NextUpdate, revoked)
	if err != nil {
		return certsign.Template{}, certsign.Options{}, nil, err
	}
	tmpl.SignatureAlgorithm = e.signatureAlgorithm()
	return certsign.CRL(tmpl, e.sign.issuer), certsign.Options{Ignore: c.IgnoreLints}, nil, nil
}

// counterStillAt refuses to sign a CRL whose number was used since its lint
// step. The counter may be at this number already, when an interrupted
// attempt of the sign step stored it; any other value means another CRL was
// issued meanwhile, and a number must not be used twice.
func counterStillAt(e *Engine, rec lintRecord) error {
	n := rec.(*crlLint).Number.Int
	next, err := certprofile.NextCRLNumber(e.sign.counterDir)
	if err != nil {
		return err
	}
	if last := new(big.Int).Sub(next, big.NewInt(1)); last.Cmp(n) > 0 {
		return startOver{fmt.Errorf("the CRL number counter is at %s, past this CRL's number %s: another CRL was issued meanwhile", last, n)}
	}
	return nil
}

func writeRoot(r *stepRun, rec lintRecord, s *certsign.Signed) ([]Fact, error) {
	e, cert := r.e, s.Certificate
	if _, err := r.output("cert.pem", certprofile.PEM(cert)); err != nil {
		return nil, err
	}
	if _, err := r.output("cert.der", s.DER); err != nil {
		return nil, err
	}
	fp, spki := sha256.Sum256(s.DER), sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	var fps strings.Builder
	if e.opt.Rehearse {
		fps.WriteString("REHEARSAL - throwaway SoftHSM token - not for production\n")
	}
	fmt.Fprintf(&fps, "Root certificate of %s\nSubject: %s\nSerial: %s\n", e.s.Title, cert.Subject, hex.EncodeToString(rec.(*certLint).Serial))
	fmt.Fprintf(&fps, "Certificate SHA-256: %s\nCertificate words: %s\n", hex.EncodeToString(fp[:]), words.String(fp[:]))
	fmt.Fprintf(&fps, "Public key (SPKI) SHA-256: %s\nPublic key words: %s\n", hex.EncodeToString(spki[:]), words.String(spki[:]))
	if _, err := r.output("fingerprints.txt", []byte(fps.String())); err != nil {
		return nil, err
	}
	e.cert = cert
	return nil, nil
}

func writeSubordinate(r *stepRun, _ lintRecord, s *certsign.Signed) ([]Fact, error) {
	e, cert := r.e, s.Certificate
	subPath, err := r.output("subordinate.pem", certprofile.PEM(cert))
	if err != nil {
		return nil, err
	}
	chainPath, err := r.output("chain.pem", certprofile.PEM(e.sign.issuer))
	if err != nil {
		return nil, err
	}
	arn := e.s.Signing.Subordinate.ACMPCAARN
	doc, err := certprofile.ACMPCAJSON(arn, cert, e.sign.issuer)
	if err != nil {
		return nil, err
	}
	jsonPath, err := r.output("acm-pca-import.json", doc)
	if err != nil {
		return nil, err
	}
	cmd := fmt.Sprintf("aws acm-pca import-certificate-authority-certificate --cli-input-json file://%s", filepath.Base(jsonPath))
	if arn == "" {
		cmd = fmt.Sprintf("aws acm-pca import-certificate-authority-certificate --certificate-authority-arn CA_ARN --certificate fileb://%s --certificate-chain fileb://%s", filepath.Base(subPath), filepath.Base(chainPath))
	}
	r.detail("import into AWS Private CA", cmd)
	r.detail("serial", fmt.Sprintf("%x", cert.SerialNumber.Bytes()))
	return []Fact{{Label: "Subject", Value: cert.Subject.String()}, {Label: "Serial", Value: fmt.Sprintf("%x", cert.SerialNumber.Bytes())},
		{Label: "Import into AWS Private CA (connected machine)", Value: cmd}}, nil
}

func writeCross(r *stepRun, _ lintRecord, s *certsign.Signed) ([]Fact, error) {
	cert := s.Certificate
	if err := certprofile.CheckCrossCertificate(cert, r.e.sign.original); err != nil {
		return nil, err
	}
	if _, err := r.output("cross-certificate.pem", certprofile.PEM(cert)); err != nil {
		return nil, err
	}
	r.detail("cross-certificate check", "subject and key are the original's; validity within the original's")
	r.detail("serial", fmt.Sprintf("%x", cert.SerialNumber.Bytes()))
	return []Fact{{Label: "Subject", Value: cert.Subject.String()}, {Label: "Serial", Value: fmt.Sprintf("%x", cert.SerialNumber.Bytes())}}, nil
}

// writeCRL writes the CRL, then advances the counter on the output medium.
func writeCRL(r *stepRun, rec lintRecord, s *certsign.Signed) ([]Fact, error) {
	st, n := r.e.sign, rec.(*crlLint).Number.Int
	if s.CRL.Number.Cmp(n) != 0 {
		return nil, fmt.Errorf("the signed CRL carries number %s, not %s", s.CRL.Number, n)
	}
	if _, err := r.output("crl.der", s.DER); err != nil {
		return nil, err
	}
	if _, err := r.output("crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: s.DER})); err != nil {
		return nil, err
	}
	counter := filepath.Join(st.counterDir, certprofile.CRLCounterFile)
	if err := certprofile.StoreCRLNumber(st.counterDir, n); err != nil {
		return nil, fmt.Errorf("the CRL was written but the counter could not be advanced; set %s to %s by hand: %w", counter, n, err)
	}
	r.detail("crl number", n.String())
	r.detail("counter file", fmt.Sprintf("%s now %s", counter, n))
	return []Fact{{Label: "CRL number", Value: n.String()},
		{Label: "Publish", Value: "copy the .crl.der file to every CRL distribution point named in the certificates"}}, nil
}
