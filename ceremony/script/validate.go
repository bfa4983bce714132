package script

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
)

// RootKeyTypes are the key types a root-generation ceremony may create.
var RootKeyTypes = []string{"ec-p384", "ec-p256", "ec-p521", "rsa-3072", "rsa-4096"}

// SignatureAlgorithms maps the names a script may use to x509 algorithms.
var SignatureAlgorithms = map[string]x509.SignatureAlgorithm{
	"ecdsa-sha256":   x509.ECDSAWithSHA256,
	"ecdsa-sha384":   x509.ECDSAWithSHA384,
	"ecdsa-sha512":   x509.ECDSAWithSHA512,
	"sha256-rsa":     x509.SHA256WithRSA,
	"sha384-rsa":     x509.SHA384WithRSA,
	"sha512-rsa":     x509.SHA512WithRSA,
	"sha256-rsa-pss": x509.SHA256WithRSAPSS,
	"sha384-rsa-pss": x509.SHA384WithRSAPSS,
	"sha512-rsa-pss": x509.SHA512WithRSAPSS,
}

// DefaultSignatureAlgorithm is the algorithm used when a script names none:
// the hash matched to the key's strength.
func DefaultSignatureAlgorithm(keyType string) x509.SignatureAlgorithm {
	switch keyType {
	case "ec-p256":
		return x509.ECDSAWithSHA256
	case "ec-p384":
		return x509.ECDSAWithSHA384
	case "ec-p521":
		return x509.ECDSAWithSHA512
	case "rsa-3072":
		return x509.SHA256WithRSA
	case "rsa-4096":
		return x509.SHA384WithRSA
	}
	return x509.UnknownSignatureAlgorithm
}

// SignatureAlgorithm is the algorithm the root certificate is signed with.
func (s *Script) SignatureAlgorithm() x509.SignatureAlgorithm {
	if s.Certificate != nil && s.Certificate.SignatureAlgorithm != "" {
		return SignatureAlgorithms[s.Certificate.SignatureAlgorithm]
	}
	if s.Key != nil {
		return DefaultSignatureAlgorithm(s.Key.Type)
	}
	return x509.UnknownSignatureAlgorithm
}

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{2,63}$`)
	prefixPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	countryRE     = regexp.MustCompile(`^[A-Z]{2}$`)
)

func (s *Script) applyDefaults() {
	if s.Preflight.AirGap == "" {
		s.Preflight.AirGap = "block"
	}
	if s.Preflight.MinFreeMB == 0 {
		s.Preflight.MinFreeMB = 16
	}
	if len(s.Quorum.Custodians) == 0 && s.Quorum.Record == nil {
		for _, p := range s.Participants {
			if p.Role == Custodian {
				s.Quorum.Custodians = append(s.Quorum.Custodians, p.Name)
			}
		}
	}
	if len(s.Quorum.Delivery) == 0 {
		s.Quorum.Delivery = []string{"card", "file"}
	}
	if s.Recovery != nil && s.Kind == RootGeneration && len(s.Recovery.Delivery) == 0 {
		s.Recovery.Delivery = []string{"card"}
	}
	if s.Key != nil && s.Key.Type == "" {
		s.Key.Type = "ec-p384"
	}
	if s.Output.Prefix == "" {
		s.Output.Prefix = s.ID
	}
}

// validate checks everything that can be checked without a token, and
// returns every problem at once.
func (s *Script) validate() Problems {
	var ps Problems
	bad := func(path, msg string, a ...any) { ps = append(ps, Problem{Path: path, Msg: fmt.Sprintf(msg, a...)}) }

	// What the ceremony is.
	switch s.Kind {
	case RootGeneration, KeyRestore, KeyBackup, CASigning, CRLIssuance, BYOKWrap:
	case "":
		bad("kind", "required (one of %s)", kindList())
	default:
		bad("kind", "unknown kind %q (one of %s)", s.Kind, kindList())
	}
	if !idPattern.MatchString(s.ID) {
		bad("id", "required: 3-64 characters, lower-case letters, digits, '.' and '-' (it is printed on share cards and names the outputs)")
	}
	if strings.TrimSpace(s.Title) == "" {
		bad("title", "required")
	}

	s.validateToken(bad)
	s.validateParticipants(bad)

	// Quorum.
	s.validateQuorum(bad)
	s.validateRecovery(bad)

	// Preflight.
	if s.Preflight.AirGap != "block" && s.Preflight.AirGap != "warn" {
		bad("preflight.air_gap", "must be block or warn, got %q", s.Preflight.AirGap)
	}
	if s.Preflight.MinFreeMB < 0 {
		bad("preflight.min_free_mb", "must not be negative")
	}

	// Kind-specific sections.
	only := func(present bool, key string, kinds ...Kind) {
		if present && !contains(kinds, s.Kind) {
			bad(key, "not used in a %s ceremony", s.Kind)
		}
		if !present && contains(kinds, s.Kind) {
			bad(key, "required in a %s ceremony", s.Kind)
		}
	}
	only(s.Key != nil, "key", RootGeneration)
	only(s.Certificate != nil, "certificate", RootGeneration)
	only(s.Restore != nil, "restore", KeyRestore)
	only(s.Backup != nil, "backup", KeyBackup)
	only(s.Signing != nil, "signing", CASigning, CRLIssuance)
	only(s.BYOK != nil, "byok", BYOKWrap)
	if s.Key != nil {
		if !contains(RootKeyTypes, s.Key.Type) {
			bad("key.type", "%q is not allowed for a root key (one of %s)", s.Key.Type, strings.Join(RootKeyTypes, ", "))
		}
		if strings.TrimSpace(s.Key.Label) == "" || len(s.Key.Label) > 64 {
			bad("key.label", "required, at most 64 bytes")
		}
	}
	if c := s.Certificate; c != nil {
		s.validateCertificate(c, bad)
	}
	if r := s.Restore; r != nil {
		validateInput(r.Backup, "restore.backup", true, bad)
		validateInput(r.Certificate, "restore.certificate", true, bad)
		if len(r.Label) > 64 {
			bad("restore.label", "at most 64 bytes")
		}
	}
	if b := s.Backup; b != nil && strings.TrimSpace(b.KeyLabel) == "" {
		bad("backup.key_label", "required: the label of the key to back up")
	}
	if g := s.Signing; g != nil {
		s.validateSigning(g, bad)
	}
	if b := s.BYOK; b != nil {
		s.validateBYOK(b, bad)
	}

	// Outputs.
	if s.Output.Directory == "" {
		bad("output.directory", "required: where the certificate, transcript and other outputs are written")
	}
	if !prefixPattern.MatchString(s.Output.Prefix) {
		bad("output.prefix", "%q cannot start a file name (letters, digits, '.', '_', '-')", s.Output.Prefix)
	}
	return ps
}

// validateToken checks the token section: module, URI and enrolment.
func (s *Script) validateToken(bad func(string, string, ...any)) {
	if s.Token.Module == "" {
		bad("token.module", "required: the absolute path of the PKCS#11 library")
	} else if !filepath.IsAbs(s.Token.Module) {
		bad("token.module", "must be an absolute path, got %q", s.Token.Module)
	}
	if m := s.Token.ModuleSHA256; m != "" {
		if b, err := hex.DecodeString(m); err != nil || len(b) != 32 {
			bad("token.module_sha256", "must be 64 hexadecimal digits (sha256sum of the PKCS#11 library)")
		}
	}
	var uri hsm.URI
	if s.Token.URI == "" {
		bad("token.uri", "required: a PKCS#11 URI such as pkcs11:token=Root;serial=0123456789abcdef")
	} else if u, err := hsm.ParseURI(s.Token.URI); err != nil {
		bad("token.uri", "%v", err)
	} else {
		uri = u
		if u.Object != "" || len(u.ID) > 0 || u.Type != "" {
			bad("token.uri", "must select a token, not a key (remove object=, id=, type=)")
		}
		if u.ModulePath != "" && u.ModulePath != s.Token.Module {
			bad("token.uri", "module-path %q differs from token.module %q", u.ModulePath, s.Token.Module)
		}
	}
	allowedEnrol := map[Kind][]Enrol{
		RootGeneration: {EnrolInitialize, EnrolChangePIN},
		KeyRestore:     {EnrolInitialize, EnrolChangePIN},
		KeyBackup:      {EnrolQuorum},
		CASigning:      {EnrolQuorum},
		CRLIssuance:    {EnrolQuorum},
		BYOKWrap:       {EnrolQuorum},
	}[s.Kind]
	switch {
	case s.Token.Enrol == "":
		bad("token.enrol", "required: initialize (blank token), change-pin (initialised token) or quorum (enrolled by an earlier ceremony)")
	case len(allowedEnrol) > 0 && !contains(allowedEnrol, s.Token.Enrol):
		bad("token.enrol", "%q is not possible in a %s ceremony (allowed: %s)", s.Token.Enrol, s.Kind, joinAny(allowedEnrol))
	}
	if s.Token.Enrol == EnrolInitialize {
		if s.Token.Label == "" || len(s.Token.Label) > 32 {
			bad("token.label", "required when enrol is initialize: the token label to write, at most 32 bytes")
		}
		if s.Token.URI != "" && uri.Serial == "" && uri.SlotID == nil && uri.Token == "" {
			bad("token.uri", "must select the blank token by serial=, slot-id= or token=")
		}
	} else {
		if s.Token.Label != "" {
			bad("token.label", "only used when enrol is initialize")
		}
		if s.Token.URI != "" && uri.Serial == "" {
			bad("token.uri", "must pin the token's serial (serial=...) so the ceremony cannot run on another token")
		}
	}
}

// validateParticipants checks the people: distinct names, known roles, an
// administrator and a witness.
func (s *Script) validateParticipants(bad func(string, string, ...any)) {
	names := map[string]bool{}
	count := map[Role]int{}
	for i, p := range s.Participants {
		path := fmt.Sprintf("participants[%d]", i)
		if strings.TrimSpace(p.Name) == "" {
			bad(path+".name", "required")
		} else if names[p.Name] {
			bad(path+".name", "%q is listed twice; every participant needs a distinct name", p.Name)
		}
		names[p.Name] = true
		switch p.Role {
		case Administrator, Witness, Custodian, Auditor:
			count[p.Role]++
		default:
			bad(path+".role", "unknown role %q (one of administrator, witness, custodian, auditor)", p.Role)
		}
	}
	if count[Administrator] == 0 {
		bad("participants", "needs a ceremony administrator (role: administrator)")
	}
	if count[Witness] == 0 {
		bad("participants", "needs at least one internal witness (role: witness)")
	}
}

func (s *Script) validateQuorum(bad func(string, string, ...any)) {
	q := s.Quorum
	usesRecord := s.Kind.UsesQuorumRecord()
	switch {
	case usesRecord && q.Record == nil:
		bad("quorum.record", "required in a %s ceremony: the quorum record written when the quorum was created", s.Kind)
	case !usesRecord && q.Record != nil:
		bad("quorum.record", "not used in a %s ceremony: it creates a new quorum", s.Kind)
	case q.Record != nil:
		validateInput(*q.Record, "quorum.record", true, bad)
	}
	s.validateCustodians(q.Custodians, "quorum.custodians", bad)
	n := len(q.Custodians)
	switch {
	case usesRecord && q.Threshold == 0 && n == 0:
		// Threshold and custodians come from the record; they need not be
		// repeated, and when they are the engine checks they agree.
	case n == 0:
		bad("quorum.custodians", "no custodians: list participants with role custodian")
	case q.Threshold < 2:
		bad("quorum.threshold", "must be at least 2 (one custodian alone must not unlock the token), got %d", q.Threshold)
	case q.Threshold > n:
		bad("quorum.threshold", "%d is more than the %d custodians", q.Threshold, n)
	case n > 255:
		bad("quorum.custodians", "at most 255 custodians")
	}
	if len(q.Delivery) > 2 {
		bad("quorum.delivery", "list card, file or both")
	}
	dseen := map[string]bool{}
	for i, d := range q.Delivery {
		if d != "card" && d != "file" {
			bad(fmt.Sprintf("quorum.delivery[%d]", i), "unknown medium %q (card or file)", d)
		}
		if dseen[d] {
			bad(fmt.Sprintf("quorum.delivery[%d]", i), "%q listed twice", d)
		}
		dseen[d] = true
	}
}

// validateRecovery checks the recovery quorum: created by a root-generation
// ceremony with a backup, named by key-backup and key-restore.
// validateCustodians checks a quorum's custodian list: each a participant
// with the custodian role, none twice.
func (s *Script) validateCustodians(names []string, field string, bad func(string, string, ...any)) {
	seen := map[string]bool{}
	for i, c := range names {
		path := fmt.Sprintf("%s[%d]", field, i)
		p, ok := s.Participant(c)
		switch {
		case !ok:
			bad(path, "%q is not among the participants", c)
		case p.Role != Custodian:
			bad(path, "%q has role %s, not custodian", c, p.Role)
		case seen[c]:
			bad(path, "%q is listed twice", c)
		}
		seen[c] = true
	}
}

func (s *Script) validateRecovery(bad func(string, string, ...any)) {
	r := s.Recovery
	backup := s.Key != nil && s.Key.Backup
	switch {
	case r == nil && s.Kind == KeyBackup:
		bad("recovery", "required in a key-backup ceremony: the recovery quorum record (record:) and the backup medium (medium:)")
		return
	case r == nil:
		return
	case s.Kind == RootGeneration && !backup:
		bad("recovery", "only used with key.backup: true")
		return
	case s.Kind != RootGeneration && s.Kind != KeyBackup && s.Kind != KeyRestore:
		bad("recovery", "not used in a %s ceremony: the recovery quorum is presented only at key-backup and key-restore ceremonies", s.Kind)
		return
	}
	if s.Kind == RootGeneration {
		if r.Record != nil {
			bad("recovery.record", "not used in a root-generation ceremony: it creates the recovery quorum")
		}
		s.validateCustodians(r.Custodians, "recovery.custodians", bad)
		switch n := len(r.Custodians); {
		case n == 0:
			bad("recovery.custodians", "required: the recovery quorum's custodians, in share-index order")
		case r.Threshold < 2:
			bad("recovery.threshold", "must be at least 2, got %d", r.Threshold)
		case r.Threshold > n:
			bad("recovery.threshold", "%d is more than the %d recovery custodians", r.Threshold, n)
		}
		for i, d := range r.Delivery {
			if d != "card" && d != "file" {
				bad(fmt.Sprintf("recovery.delivery[%d]", i), "unknown medium %q (card or file)", d)
			}
		}
	} else {
		if r.Threshold != 0 || len(r.Custodians) > 0 || len(r.Delivery) > 0 {
			bad("recovery", "threshold, custodians and delivery are the recovery quorum record's; name the record only")
		}
		if r.Record == nil {
			bad("recovery.record", "required: the recovery quorum record written by the root ceremony")
		} else {
			validateInput(*r.Record, "recovery.record", true, bad)
		}
	}
	switch {
	case s.Kind == KeyRestore && r.Medium != "":
		bad("recovery.medium", "not used in a key-restore ceremony (the backup is restore.backup)")
	case s.Kind != KeyRestore && strings.TrimSpace(r.Medium) == "":
		bad("recovery.medium", "required: the directory on the backup medium the backup file is written to, never the output directory")
	}
}

func (s *Script) validateCertificate(c *Certificate, bad func(string, string, ...any)) {
	if strings.TrimSpace(c.Subject.CommonName) == "" {
		bad("certificate.subject.common_name", "required")
	}
	if c.Subject.Country != "" && !countryRE.MatchString(c.Subject.Country) {
		bad("certificate.subject.country", "must be a two-letter ISO 3166 code in capitals, got %q", c.Subject.Country)
	}
	switch {
	case c.NotBefore.IsZero():
		bad("certificate.not_before", "required")
	case c.NotAfter.IsZero():
		bad("certificate.not_after", "required")
	case !c.NotAfter.After(c.NotBefore):
		bad("certificate.not_after", "must be after not_before")
	}
	if c.MaxPathLength == nil {
		bad("certificate.max_path_length", "required: the basicConstraints path length (-1 for no limit)")
	} else if *c.MaxPathLength < -1 {
		bad("certificate.max_path_length", "must be -1 (no limit) or 0 and above")
	} else if *c.MaxPathLength == 0 {
		bad("certificate.max_path_length", "0 forbids every subordinate CA: the root could sign end-entity certificates only, never the CA certificates of a ca-signing ceremony; use -1 (no limit) or 1 and above")
	}
	if c.SignatureAlgorithm != "" {
		alg, ok := SignatureAlgorithms[c.SignatureAlgorithm]
		keyType := ""
		if s.Key != nil {
			keyType = s.Key.Type
		}
		switch {
		case !ok:
			bad("certificate.signature_algorithm", "unknown algorithm %q", c.SignatureAlgorithm)
		case strings.HasPrefix(keyType, "ec-") != (alg == x509.ECDSAWithSHA256 || alg == x509.ECDSAWithSHA384 || alg == x509.ECDSAWithSHA512):
			bad("certificate.signature_algorithm", "%s does not fit a %s key", c.SignatureAlgorithm, keyType)
		}
	}
}

func validateInput(in Input, path string, required bool, bad func(string, string, ...any)) {
	if in.Path == "" && required {
		bad(path+".path", "required")
	}
	if in.SHA256 != "" {
		if b, err := hex.DecodeString(in.SHA256); err != nil || len(b) != 32 {
			bad(path+".sha256", "must be 64 hexadecimal digits")
		}
	}
}

func kindList() string {
	return joinAny(Kinds)
}

func joinAny[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
