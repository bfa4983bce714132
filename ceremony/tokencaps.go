package ceremony

import (
	"fmt"
	"sort"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/hsm"
)

// AppCapabilities is what a token can do with Key Ceremony, ceremony by
// ceremony, derived from what it says of itself without logging in (the
// same checks ceremony plan and the token step make): which root keys it
// generates and signs with, how it signs, which BYOK imports it wraps
// entirely inside itself and which with steps in host memory, and whether it
// backs up and restores a root key. `keyceremony token capabilities` prints
// it; the top-level README's table is its output for the implementations the
// tests run against.
type AppCapabilities struct {
	Implementation string `json:"implementation"` // the module's C_GetInfo and the token's model
	Root           string `json:"root"`
	Signing        string `json:"signing"`
	BYOKInToken    string `json:"byokInToken"`
	BYOKWithHost   string `json:"byokWithHostSteps"`
	Backup         string `json:"backup"`
}

// TokenCapabilities works out AppCapabilities for the token in slot; it
// opens a session (no login) for the wrap plans' probes.
func TokenCapabilities(m *hsm.Module, slot hsm.Slot) (*AppCapabilities, error) {
	caps, err := m.Capabilities(slot.ID)
	if err != nil {
		return nil, err
	}
	info, err := m.Info()
	if err != nil {
		return nil, err
	}
	a := &AppCapabilities{Implementation: fmt.Sprintf("%s %s (%s)", info.Description, info.LibraryVersion, strings.TrimSpace(slot.Token.Model))}

	var roots []string
	for _, kt := range caps.SigningKeyTypes() {
		roots = append(roots, kt.String())
	}
	a.Root = orNone(strings.Join(roots, ", "), "none: it generates no signing key pair Key Ceremony knows")

	var schemes []string
	for _, s := range []struct {
		name string
		kt   hsm.KeyType
		pss  bool
	}{{"RSA PKCS#1 v1.5", hsm.RSA2048, false}, {"RSA-PSS", hsm.RSA2048, true}, {"ECDSA", hsm.ECP256, false}, {"Ed25519", hsm.Ed25519, false}} {
		if caps.CanSign(s.kt, s.pss) == nil {
			schemes = append(schemes, s.name)
		}
	}
	a.Signing = orNone(strings.Join(schemes, ", "), "none")

	tok, err := m.OpenSlot(slot)
	if err != nil {
		return nil, err
	}
	defer tok.Close()
	a.BYOKInToken, a.BYOKWithHost = byokCapabilities(tok, caps)

	switch err := firstOf(caps.CanWrapKWP(), caps.CanUnwrapKWP()); {
	case err != nil:
		a.Backup = "no: " + missingOf(err)
	default:
		a.Backup = "yes (CKM_AES_KEY_WRAP_PAD)"
	}
	return a, nil
}

// byokCapabilities sums up, over every key spec and wrapping algorithm pair
// AWS KMS allows (with a 4096-bit wrapping key), the imports the token can
// prepare: generating the material and wrapping it entirely in the token,
// or with steps in host memory.
func byokCapabilities(tok *hsm.Token, caps *hsm.Capabilities) (inToken, withHost string) {
	byAlg := map[kmsimport.Algorithm][2][]string{}
	var reasons []string
	total := 0
	for _, c := range kmsimport.Allowed() {
		if c.Wrapping != kmsimport.WrappingRSA4096 {
			continue
		}
		total++
		info, _ := kmsimport.Spec(c.Spec)
		if err := caps.CanGenerate(info.TokenType); err != nil {
			reasons = appendOnce(reasons, "material: "+missingOf(err))
			continue
		}
		plan, err := kmsimport.Plan(tok, c.Algorithm, c.Spec, c.Wrapping)
		if err != nil {
			reasons = appendOnce(reasons, "wrap: "+missingOf(err))
			continue
		}
		host := false
		for _, s := range plan {
			host = host || !s.InToken
		}
		lists := byAlg[c.Algorithm]
		if host {
			lists[1] = append(lists[1], string(c.Spec))
		} else {
			lists[0] = append(lists[0], string(c.Spec))
		}
		byAlg[c.Algorithm] = lists
	}
	var algs []string
	for alg := range byAlg {
		algs = append(algs, string(alg))
	}
	sort.Strings(algs)
	var in, host []string
	nHost := 0
	for _, alg := range algs {
		lists := byAlg[kmsimport.Algorithm(alg)]
		if len(lists[0]) > 0 {
			in = append(in, alg+": "+strings.Join(lists[0], ", "))
		}
		nHost += len(lists[1])
	}
	none := "none: " + strings.Join(reasons, "; ")
	if !caps.Implements(hsm.FuncWrapKey) {
		// Every reason comes down to this one.
		none = "none: the module does not implement C_WrapKey"
	}
	inToken = orNone(strings.Join(in, "; "), none)
	switch {
	case nHost == 0 && len(in) == 0:
		withHost = none
	case nHost == 0:
		withHost = "none needed beyond the above"
	default:
		for _, alg := range algs {
			if n := len(byAlg[kmsimport.Algorithm(alg)][1]); n > 0 {
				host = append(host, fmt.Sprintf("%s: %d specs", alg, n))
			}
		}
		withHost = strings.Join(host, "; ") + fmt.Sprintf(" (of %d pairs)", total)
	}
	return inToken, withHost
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func firstOf(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// missingOf is what a capability error says is missing.
func missingOf(err error) string {
	if ce, ok := err.(*hsm.CapabilityError); ok {
		return ce.Missing
	}
	return err.Error()
}

// MarkdownTable prints capabilities as the README's table.
func MarkdownTable(rows []*AppCapabilities) string {
	var b strings.Builder
	b.WriteString("| implementation | root keys | signing | BYOK entirely in the token | BYOK with host steps | root key backup |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", esc(r.Implementation), esc(r.Root), esc(r.Signing), esc(r.BYOKInToken), esc(r.BYOKWithHost), esc(r.Backup))
	}
	return b.String()
}
