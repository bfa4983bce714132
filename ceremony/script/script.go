// Package script reads ceremony scripts: YAML files that state, before the
// ceremony, everything it will do — the kind of ceremony, the token, the people
// and their roles, the quorum, the key and certificate parameters, the inputs and
// the output directory. A script never holds a secret, so the copy reviewed in
// advance is byte for byte the copy executed, and its SHA-256 identifies it.
//
// Parsing is strict: unknown keys, duplicate keys, anchors and aliases, and
// values of the wrong type are errors, and every problem in a file is reported
// at once with its YAML path and line, so a reviewer fixes a script in one pass.
package script

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Kind is the kind of ceremony a script describes.
type Kind string

const (
	RootGeneration Kind = "root-generation"
	CASigning      Kind = "ca-signing"
	// CRLIssuance is a ca-signing ceremony that only issues the root's CRL.
	CRLIssuance Kind = "crl"
	BYOKWrap    Kind = "byok-wrap"
	KeyBackup   Kind = "key-backup"
	KeyRestore  Kind = "key-restore"
)

// Kinds lists every kind a script may name.
var Kinds = []Kind{RootGeneration, CASigning, CRLIssuance, BYOKWrap, KeyBackup, KeyRestore}

// UsesQuorumRecord reports whether the kind works under a quorum created by
// an earlier ceremony (named in quorum.record) rather than creating one.
func (k Kind) UsesQuorumRecord() bool {
	switch k {
	case KeyRestore, KeyBackup, CASigning, CRLIssuance, BYOKWrap:
		return true
	}
	return false
}

// Role is a participant's part in the ceremony.
type Role string

const (
	// Administrator (Ceremony Administrator) runs the ceremony and operates the laptop.
	Administrator Role = "administrator"
	// Witness (Internal Witness) observes every step and confirms it.
	Witness Role = "witness"
	// Custodian (Crypto Officer) holds one share of the quorum secret.
	Custodian Role = "custodian"
	// Auditor observes and signs the transcript; may be external.
	Auditor Role = "auditor"
)

// Roles lists the roles in the order the transcript prints them.
var Roles = []Role{Administrator, Witness, Custodian, Auditor}

// Title is the role's name as people say it.
func (r Role) Title() string {
	switch r {
	case Administrator:
		return "Ceremony Administrator"
	case Witness:
		return "Internal Witness"
	case Custodian:
		return "Crypto Officer (custodian)"
	case Auditor:
		return "Auditor"
	}
	return string(r)
}

// Script is a parsed and validated ceremony script.
type Script struct {
	Kind         Kind          `yaml:"kind"`
	ID           string        `yaml:"id"`
	Title        string        `yaml:"title"`
	Description  string        `yaml:"description"`
	Token        Token         `yaml:"token"`
	Participants []Participant `yaml:"participants"`
	Quorum       Quorum        `yaml:"quorum"`
	Recovery     *Recovery     `yaml:"recovery"`
	Preflight    Preflight     `yaml:"preflight"`
	Key          *Key          `yaml:"key"`
	Certificate  *Certificate  `yaml:"certificate"`
	Backup       *Backup       `yaml:"backup"`
	Restore      *Restore      `yaml:"restore"`
	Signing      *Signing      `yaml:"signing"`
	BYOK         *BYOK         `yaml:"byok"`
	Output       Output        `yaml:"output"`

	// Set by Load, not by the YAML.
	Path   string   `yaml:"-"` // the file the script was read from
	Dir    string   `yaml:"-"` // relative paths in the script are relative to this directory
	SHA256 [32]byte `yaml:"-"` // hash of the exact bytes read
	Raw    []byte   `yaml:"-"` // the exact bytes read
}

// Token names the PKCS#11 token the ceremony works on and how it is enrolled
// under the quorum.
type Token struct {
	// Module is the absolute path of the PKCS#11 library.
	Module string `yaml:"module"`
	// ModuleSHA256, when given, pins the library file: a different file
	// stops the ceremony (its SHA-256 is recorded either way).
	ModuleSHA256 string `yaml:"module_sha256"`
	// URI selects the token (RFC 7512). An initialised token must be pinned by
	// serial=; a blank token may be selected by slot-id= or serial=.
	URI string `yaml:"uri"`
	// Enrol says how the token comes under the quorum's control; see Enrol.
	Enrol Enrol `yaml:"enrol"`
	// Label is the label written by C_InitToken when Enrol is "initialize".
	Label string `yaml:"label"`
}

// Enrol is how a ceremony brings a token under the quorum.
type Enrol string

const (
	// EnrolInitialize initialises a blank token (C_InitToken) with an SO PIN and
	// a user PIN both derived from the quorum secret.
	EnrolInitialize Enrol = "initialize"
	// EnrolChangePIN takes an initialised token: its current SO and user PINs
	// are entered once and changed (C_SetPIN) to ones derived from the quorum secret.
	EnrolChangePIN Enrol = "change-pin"
	// EnrolQuorum uses a token an earlier ceremony already enrolled under the
	// quorum record named in quorum.record.
	EnrolQuorum Enrol = "quorum"
)

// Participant is a person present at the ceremony.
type Participant struct {
	Name string `yaml:"name"`
	Role Role   `yaml:"role"`
}

// Quorum is the m-of-n custodian quorum.
type Quorum struct {
	// Threshold is m: how many custodians must present shares.
	Threshold int `yaml:"threshold"`
	// Custodians are the n custodians by name, in share-index order (the
	// first named gets share 1).
	Custodians []string `yaml:"custodians"`
	// Delivery lists how shares are handed out: "card" (printed share card
	// PDF) and/or "file" (age-encrypted file with the custodian's passphrase).
	Delivery []string `yaml:"delivery"`
	// Record is the quorum record written by the ceremony that created the
	// quorum; ceremonies that use an existing quorum (key-restore,
	// key-backup, ca-signing, crl, byok-wrap) name it here.
	Record *Input `yaml:"record"`
}

// Recovery is the recovery quorum: a quorum of its own (its own cards, and
// its own custodians or threshold) from whose secret alone the backup KEK is
// derived. Its cards are presented only at key-backup and key-restore
// ceremonies, so what a routine ceremony (ca-signing, crl, byok-wrap) puts
// in memory cannot open a backup. See ceremony/README.md.
type Recovery struct {
	// Threshold, Custodians and Delivery create the recovery quorum in a
	// root-generation ceremony with key.backup: true.
	Threshold  int      `yaml:"threshold"`
	Custodians []string `yaml:"custodians"`
	Delivery   []string `yaml:"delivery"`
	// Record names the recovery quorum record in key-backup and
	// key-restore ceremonies.
	Record *Input `yaml:"record"`
	// Medium is the directory the backup file is written to
	// (root-generation, key-backup): a medium of its own, stored apart from
	// the output medium, never inside the output directory.
	Medium string `yaml:"medium"`
}

// Delivers reports whether recovery shares are handed out on medium.
func (r Recovery) Delivers(medium string) bool { return Quorum{Delivery: r.Delivery}.Delivers(medium) }

// LegacyBackup reports whether a root-generation script backs its key up
// the way scripts did before the recovery quorum (key.backup: true without
// a recovery section): such a script only resumes a ceremony it started.
func (s *Script) LegacyBackup() bool {
	return s.Kind == RootGeneration && s.Key != nil && s.Key.Backup && s.Recovery == nil
}

// Preflight tunes the checks every ceremony starts with.
type Preflight struct {
	// AirGap is "block" (an up network interface other than loopback stops
	// the ceremony) or "warn" (it is shown and recorded). Default block.
	AirGap string `yaml:"air_gap"`
	// MinFreeMB is the free space the output directory needs. Default 16.
	MinFreeMB int `yaml:"min_free_mb"`
}

// Key describes the key pair a root-generation ceremony creates.
type Key struct {
	// Type is one of ec-p384 (default), ec-p256, ec-p521, rsa-3072, rsa-4096.
	Type string `yaml:"type"`
	// Label is the CKA_LABEL of the key pair on the token.
	Label string `yaml:"label"`
	// Backup makes the private key extractable (wrap with trusted keys only)
	// and wraps it under a quorum-derived KEK to a backup file.
	Backup bool `yaml:"backup"`
}

// Certificate is the profile of a self-signed root certificate.
type Certificate struct {
	Subject   Name      `yaml:"subject"`
	NotBefore time.Time `yaml:"not_before"`
	NotAfter  time.Time `yaml:"not_after"`
	// MaxPathLength is the basicConstraints pathLenConstraint; -1 means none.
	MaxPathLength *int `yaml:"max_path_length"`
	// SignatureAlgorithm overrides the default for the key type
	// (ecdsa-sha256/384/512, sha256/384/512-rsa, sha256/384/512-rsa-pss).
	SignatureAlgorithm string `yaml:"signature_algorithm"`
	// IgnoreLints names zlint lints that do not apply to this private PKI;
	// their findings are still recorded (as for the certificates the root signs).
	IgnoreLints []string `yaml:"ignore_lints"`
}

// Name is a distinguished name.
type Name struct {
	CommonName         string `yaml:"common_name"`
	Organization       string `yaml:"organization"`
	OrganizationalUnit string `yaml:"organizational_unit"`
	Country            string `yaml:"country"`
	Province           string `yaml:"province"`
	Locality           string `yaml:"locality"`
}

// Backup describes a key-backup ceremony: wrap an existing key on a token
// enrolled under the quorum.
type Backup struct {
	// KeyLabel is the label of the private key to back up; it must have been
	// created extractable and wrap-with-trusted.
	KeyLabel string `yaml:"key_label"`
}

// Restore describes a key-restore ceremony.
type Restore struct {
	// Backup is the key backup file written by the root ceremony.
	Backup Input `yaml:"backup"`
	// Certificate is the root certificate that proves the restored key.
	Certificate Input `yaml:"certificate"`
	// Label for the restored key; default the label in the backup.
	Label string `yaml:"label"`
	// RepairPadding allows restoring a backup made by a token whose
	// CKM_AES_KEY_WRAP_PAD is not RFC 5649 (the backup records it) into a
	// token that is: the key is unwrapped in host memory with the KEK, its
	// zero padding removed, and wrapped again per RFC 5649 for the token to
	// unwrap. The root private key is in host memory for that moment.
	RepairPadding bool `yaml:"repair_padding"`
}

// Input is a file the ceremony reads. Its SHA-256 is recorded; when the
// script pins it, a different file stops the ceremony.
type Input struct {
	Path   string `yaml:"path"`
	SHA256 string `yaml:"sha256"`
}

// Output is where the ceremony writes.
type Output struct {
	// Directory, relative to the script's directory unless absolute. The
	// --out flag overrides it.
	Directory string `yaml:"directory"`
	// Prefix starts every output file name; default the script's id.
	Prefix string `yaml:"prefix"`
}

// Load reads, parses and validates the script at path.
func Load(path string) (*Script, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ceremony script: %w", err)
	}
	s, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("ceremony script %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ceremony script %s: %w", path, err)
	}
	s.Path, s.Dir = abs, filepath.Dir(abs)
	return s, nil
}

// Parse parses and validates a script held in memory. Relative paths in the
// script resolve against the current directory unless Dir is set afterwards.
func Parse(raw []byte) (*Script, error) {
	var s Script
	root, errs := decodeStrict(raw, &s)
	if len(errs) > 0 {
		return nil, errs
	}
	s.applyDefaults()
	if errs := s.validate(); len(errs) > 0 {
		for i := range errs {
			errs[i].Line = lineOf(root, errs[i].Path)
		}
		return nil, errs
	}
	s.Raw = bytes.Clone(raw)
	s.SHA256 = sha256.Sum256(raw)
	s.Dir = "."
	return &s, nil
}

// Resolve turns a path from the script into one relative to the current
// directory (or absolute).
func (s *Script) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// OutputDir is the directory named by the script, resolved.
func (s *Script) OutputDir() string { return s.Resolve(s.Output.Directory) }

// Participant returns the participant with the given name.
func (s *Script) Participant(name string) (Participant, bool) {
	for _, p := range s.Participants {
		if p.Name == name {
			return p, true
		}
	}
	return Participant{}, false
}

// WithRole lists the participants who have role r, in script order.
func (s *Script) WithRole(r Role) []Participant {
	var out []Participant
	for _, p := range s.Participants {
		if p.Role == r {
			out = append(out, p)
		}
	}
	return out
}

// Delivers reports whether shares are handed out on medium ("card" or "file").
func (q Quorum) Delivers(medium string) bool {
	for _, d := range q.Delivery {
		if d == medium {
			return true
		}
	}
	return false
}
