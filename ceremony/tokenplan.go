package ceremony

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
	"github.com/keyceremony/keyceremony/hsm"
)

// Where says where an operation of a ceremony runs on its token.
type Where string

const (
	InToken Where = "in the token"
	InHost  Where = "IN HOST MEMORY"
	Cannot  Where = "CANNOT RUN"
)

// CapabilityLine is one operation of the script and where it runs on this
// token: in the token, partly in host memory, or not at all (then Detail
// says what is missing and what to change).
type CapabilityLine struct {
	Step      string `json:"step"`
	Operation string `json:"operation"`
	Where     Where  `json:"where"`
	Detail    string `json:"detail"`
}

func (l CapabilityLine) String() string {
	return fmt.Sprintf("%s: %s — %s", l.Operation, l.Where, l.Detail)
}

// TokenReport is what the script's token can do for this script, learnt
// without logging in (mechanism lists and information are public), so that a
// missing capability is known before anyone is called into the room.
type TokenReport struct {
	Module   string            `json:"module"`
	Library  hsm.ModuleInfo    `json:"library"`
	Slot     uint              `json:"slot"`
	Identity hsm.TokenIdentity `json:"identity"`
	Lines    []CapabilityLine  `json:"lines"`
}

// Blocking are the operations that cannot run at all.
func (r *TokenReport) Blocking() []CapabilityLine {
	var out []CapabilityLine
	for _, l := range r.Lines {
		if l.Where == Cannot {
			out = append(out, l)
		}
	}
	return out
}

// ErrCannotRun is a script that this token cannot carry out: re-running does
// not help; the script (or the token) must change.
var ErrCannotRun = errors.New("this token cannot carry out the script")

// CannotRunError lists what the token cannot do for the script and what to
// change. Re-running the ceremony cannot fix it.
type CannotRunError struct {
	Token string
	Lines []CapabilityLine
}

func (e *CannotRunError) Error() string {
	var parts []string
	for _, l := range e.Lines {
		parts = append(parts, l.Operation+": "+l.Detail)
	}
	return fmt.Sprintf("token %q cannot carry out this script (running it again will not help; change the script or use another token): %s",
		e.Token, strings.Join(parts, "; "))
}

func (e *CannotRunError) Unwrap() error { return ErrCannotRun }

// ProbeToken opens the script's module (the throwaway SoftHSM of a
// rehearsal), finds the token by the script's URI without logging in, and
// reports, for every operation of the script, whether it runs in the token,
// in host memory, or cannot run. `ceremony plan`, the GUI's script summary
// and the token step all use it.
func (e *Engine) ProbeToken() (*TokenReport, error) {
	if err := e.openModule(); err != nil {
		return nil, err
	}
	u, err := e.tokenURI()
	if err != nil {
		return nil, err
	}
	slot, err := e.mod.FindToken(u)
	if err != nil {
		return nil, err
	}
	return e.probeSlot(slot)
}

// probeSlot reports on the token in slot (found by the caller).
func (e *Engine) probeSlot(slot hsm.Slot) (*TokenReport, error) {
	caps, err := e.mod.Capabilities(slot.ID)
	if err != nil {
		return nil, err
	}
	r := &TokenReport{Module: e.modulePath, Slot: slot.ID, Identity: slot.Identity()}
	r.Library, _ = e.mod.Info()
	p := &prober{e: e, caps: caps, slot: slot}
	r.Lines = p.lines()
	return r, nil
}

// prober derives the capability lines of one script on one token.
type prober struct {
	e    *Engine
	caps *hsm.Capabilities
	slot hsm.Slot
	out  []CapabilityLine
}

func (p *prober) add(step, op string, where Where, detail string) {
	p.out = append(p.out, CapabilityLine{Step: step, Operation: op, Where: where, Detail: detail})
}

// check adds a line for op: in the token when err is nil, else cannot run,
// with what is missing and what to change.
func (p *prober) check(step, op, mechanism string, err error, change string) {
	if err == nil {
		p.add(step, op, InToken, mechanism)
		return
	}
	detail := err.Error()
	var ce *hsm.CapabilityError
	if errors.As(err, &ce) {
		detail = ce.Missing
	}
	if change != "" {
		detail += "; " + change
	}
	p.add(step, op, Cannot, detail)
}

func (p *prober) lines() []CapabilityLine {
	s := p.e.s
	switch s.Kind {
	case script.RootGeneration:
		kt, err := hsm.ParseKeyType(s.Key.Type)
		if err != nil {
			p.add("generate-key", "generate the root key", Cannot, err.Error())
			break
		}
		p.signingKey("generate-key", kt)
		if s.Key.Backup {
			p.backup("backup-key", true)
		}
		p.sign("sign-certificate", "sign the root certificate", kt, isPSS(s.SignatureAlgorithm()))
	case script.KeyBackup:
		p.backup("backup-key", false)
	case script.KeyRestore:
		p.check("restore-key", "unwrap the backed-up key (CKM_AES_KEY_WRAP_PAD)", "CKM_AES_KEY_WRAP_PAD",
			p.caps.CanUnwrapKWP(), "restore into a token that unwraps with CKM_AES_KEY_WRAP_PAD")
		if cert := p.readCertificate(s.Restore.Certificate.Path); cert != nil {
			p.sign("prove-key", "sign the challenge with the restored key", hsm.KeyTypeOf(cert.PublicKey), false)
		}
	case script.CASigning, script.CRLIssuance:
		if cert := p.readCertificate(s.Signing.Issuer.Certificate.Path); cert != nil {
			alg := cert.SignatureAlgorithm
			if a := s.Signing.Issuer.SignatureAlgorithm; a != "" {
				alg = script.SignatureAlgorithms[a]
			}
			p.sign("sign", "sign with the root key", hsm.KeyTypeOf(cert.PublicKey), isPSS(alg))
		}
	case script.BYOKWrap:
		p.byok()
	}
	return p.out
}

// signingKey checks that the token generates a key of type kt and signs
// with it, naming what it can generate instead when it cannot.
func (p *prober) signingKey(step string, kt hsm.KeyType) {
	mech := map[bool]string{true: "CKM_RSA_PKCS_KEY_PAIR_GEN", false: "CKM_EC_KEY_PAIR_GEN"}[kt.IsRSA()]
	if kt == hsm.Ed25519 {
		mech = "CKM_EC_EDWARDS_KEY_PAIR_GEN"
	}
	err := p.caps.CanGenerate(kt)
	if err == nil {
		err = p.caps.CanSign(kt, false)
	}
	p.check(step, "generate the "+kt.String()+" key pair", mech, err, "choose key.type "+p.alternatives())
}

// alternatives says which signing key types the token can make.
func (p *prober) alternatives() string {
	var names []string
	for _, kt := range p.caps.SigningKeyTypes() {
		names = append(names, kt.String())
	}
	if len(names) == 0 {
		return "(this token generates no signing key type Key Ceremony knows: use another token)"
	}
	return "among what this token generates and signs with: " + strings.Join(names, ", ")
}

func (p *prober) sign(step, op string, kt hsm.KeyType, pss bool) {
	if kt == hsm.KeyTypeUnknown || kt == hsm.RSAOther {
		p.add(step, op, Cannot, "the key's type is not one Key Ceremony signs with")
		return
	}
	mech := map[bool]string{true: "CKM_RSA_PKCS", false: "CKM_ECDSA"}[kt.IsRSA()]
	switch {
	case kt.IsRSA() && pss:
		mech = "CKM_RSA_PKCS_PSS"
	case kt == hsm.Ed25519:
		mech = "CKM_EDDSA"
	}
	change := ""
	if pss {
		change = "choose a PKCS#1 v1.5 signature algorithm (sha256-rsa, sha384-rsa, sha512-rsa)"
	}
	p.check(step, op, mech, p.caps.CanSign(kt, pss), change)
}

// backup checks the root key's backup: wrapped inside the token under a
// quorum-derived KEK with CKM_AES_KEY_WRAP_PAD.
func (p *prober) backup(step string, inRoot bool) {
	op := "wrap the root key under the backup KEK (CKM_AES_KEY_WRAP_PAD)"
	err := p.caps.CanWrapKWP()
	change := "use a token that wraps with CKM_AES_KEY_WRAP_PAD"
	if inRoot {
		change = "set key.backup: false (and keep the key on this token only), or " + change
	}
	p.check(step, op, "CKM_AES_KEY_WRAP_PAD", err, change)
}

// byok plans the byok-wrap ceremony: the key material's generation and the
// wrap, step by step, as the wrap-plan step will show it after the unlock.
func (p *prober) byok() {
	b := p.e.s.BYOK
	st := p.e.loadBYOKState(nil, time.Now(), false, func(string, error) {})
	info := st.info
	if info.TokenType == hsm.KeyTypeUnknown {
		p.add("wrap", "wrap the key material", Cannot, "the key spec is not one Key Ceremony can import")
		return
	}
	if b.Key.Source == script.KeyGenerate {
		p.check("byok-key", "generate the "+info.TokenType.String()+" key material", "", p.caps.CanGenerate(info.TokenType),
			"generate the material on a token that can, or name an existing key (key.source: existing)")
	}
	wks := kmsimport.WrappingKeySpec("")
	if st.params != nil {
		wks = st.params.WrappingKeySpec()
	}
	tok, err := p.e.mod.OpenSlot(p.slot)
	if err != nil {
		p.add("wrap", "wrap the key material", Cannot, err.Error())
		return
	}
	defer tok.Close()
	op := fmt.Sprintf("wrap %s material with %s", b.KeySpec, b.WrappingAlgorithm)
	plan, err := kmsimport.Plan(tok, st.req.Algorithm, st.req.Spec, wks)
	if err != nil {
		p.check("wrap-plan", op, "", err, "this token cannot produce the import: use a token that wraps (ceremony/README.md lists what USB HSMs do)")
		return
	}
	for _, s := range plan {
		switch {
		case s.InToken:
			p.add("wrap", s.Action, InToken, s.Mechanism)
		case b.AllowHostSteps:
			p.add("wrap", s.Action, InHost, s.Mechanism+" (allowed: allow_host_steps: true)")
		default:
			p.add("wrap", s.Action, Cannot, s.Mechanism+" would run in host memory, which the script does not allow (allow_host_steps: false): "+
				"review and set allow_host_steps: true, or use a token that does "+b.WrappingAlgorithm+" in hardware")
		}
	}
}

// readCertificate reads a certificate the script names (PEM or DER), or adds
// a line saying why it cannot.
func (p *prober) readCertificate(path string) *x509.Certificate {
	raw, err := os.ReadFile(p.e.s.Resolve(path))
	if err == nil {
		var cert *x509.Certificate
		if cert, err = parseCertificate(raw); err == nil {
			return cert
		}
	}
	p.add("inputs", "read the certificate "+path, Cannot, err.Error())
	return nil
}

func isPSS(a x509.SignatureAlgorithm) bool {
	return a == x509.SHA256WithRSAPSS || a == x509.SHA384WithRSAPSS || a == x509.SHA512WithRSAPSS
}

// ProbeScript is ProbeToken for a script alone, as the GUI's script summary
// shows it: it loads the module, probes the token without logging in, and
// releases the module again (a rehearsal started next loads SoftHSM with its
// own configuration).
func ProbeScript(s *script.Script) (*TokenReport, error) {
	e := &Engine{s: s, done: map[string]transcript.Entry{}, linted: map[string]lintRecord{}}
	defer e.cleanup()
	return e.ProbeToken()
}

// Summary is the report in a few lines for people: one per operation, and
// what cannot run first.
func (r *TokenReport) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q (%s %s, serial %s), probed without logging in:\n", r.Identity.Label, r.Identity.Manufacturer, r.Identity.Model, r.Identity.Serial)
	for _, l := range append(r.Blocking(), r.nonBlocking()...) {
		fmt.Fprintf(&b, "• %s\n", l)
	}
	return strings.TrimRight(b.String(), "\n")
}

func (r *TokenReport) nonBlocking() []CapabilityLine {
	var out []CapabilityLine
	for _, l := range r.Lines {
		if l.Where != Cannot {
			out = append(out, l)
		}
	}
	return out
}

// mustCaps is the token's capabilities, or none when they cannot be read
// (for messages that only suggest alternatives).
func mustCaps(tok *hsm.Token) *hsm.Capabilities {
	if c, err := tok.Capabilities(); err == nil {
		return c
	}
	return &hsm.Capabilities{}
}
