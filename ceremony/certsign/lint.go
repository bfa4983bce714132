package certsign

import (
	"fmt"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Results are zlint's findings, by severity, as "lint_name: details".
type Results struct {
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Notices  []string `json:"notices,omitempty"`
	// Ignored lists findings of lints the profile chose to ignore, so the
	// transcript still shows them.
	Ignored []string `json:"ignored,omitempty"`
}

// Options tune linting for a profile.
type Options struct {
	// Ignore names lints whose findings do not stop the ceremony (for example
	// CA/Browser Forum rules that do not apply to a private PKI). They are
	// still reported under Results.Ignored.
	Ignore []string
}

// LintError is returned when zlint reports errors; nothing may be signed.
type LintError struct{ Results Results }

func (e *LintError) Error() string {
	return fmt.Sprintf("zlint found %d error(s): %s", len(e.Results.Errors), strings.Join(e.Results.Errors, "; "))
}

// lintCertificate runs zlint on a certificate built by the throwaway key.
func lintCertificate(der []byte, selfSigned bool, opt Options) (Results, error) {
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return Results{}, fmt.Errorf("zlint cannot parse the certificate: %w", err)
	}
	// zcrypto marks a certificate self-signed only if its own key verifies
	// the signature, which the throwaway key's signature cannot. The token
	// will self-sign exactly these bytes, so lint them as a root, not as a
	// subordinate CA.
	zc.SelfSigned = selfSigned
	return summarise(zlint.LintCertificate(zc), opt), nil
}

// lintCRL runs zlint on a CRL built by the throwaway key.
func lintCRL(der []byte, opt Options) (Results, error) {
	zr, err := zx509.ParseRevocationList(der)
	if err != nil {
		return Results{}, fmt.Errorf("zlint cannot parse the CRL: %w", err)
	}
	reg, err := caCRLRegistry()
	if err != nil {
		return Results{}, err
	}
	return summarise(zlint.LintRevocationListEx(zr, reg), opt), nil
}

func summarise(rs *zlint.ResultSet, opt Options) Results {
	ignored := map[string]bool{}
	for _, n := range opt.Ignore {
		ignored[n] = true
	}
	var r Results
	for name, res := range rs.Results {
		entry := name
		if res.Details != "" {
			entry += ": " + res.Details
		}
		switch res.Status {
		case lint.Error, lint.Fatal, lint.Warn, lint.Notice:
			if ignored[name] {
				r.Ignored = append(r.Ignored, entry)
				continue
			}
		}
		switch res.Status {
		case lint.Error, lint.Fatal:
			r.Errors = append(r.Errors, entry)
		case lint.Warn:
			r.Warnings = append(r.Warnings, entry)
		case lint.Notice:
			r.Notices = append(r.Notices, entry)
		}
	}
	for _, s := range [][]string{r.Errors, r.Warnings, r.Notices, r.Ignored} {
		sort.Strings(s)
	}
	return r
}

// caCRLRegistry is zlint's registry configured for CRLs that list CA
// certificates only (a root's CRL), which the CA/Browser Forum lets run 12
// months instead of 10 days. It is a copy: the global registry is untouched.
func caCRLRegistry() (lint.Registry, error) {
	g := lint.GlobalRegistry()
	reg, err := g.Filter(lint.FilterOptions{IncludeSources: g.Sources()})
	if err != nil {
		return nil, err
	}
	cfg, err := lint.NewConfigFromString("[e_crl_next_update_invalid]\nSubscriberCRL = false\n")
	if err != nil {
		return nil, err
	}
	reg.SetConfiguration(cfg)
	return reg, nil
}
