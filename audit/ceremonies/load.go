// Package ceremonies loads the evidence of key ceremonies into the audit
// database: a ceremony's output directory (or its transcript) is verified
// with the transcript package, the same code `ceremony verify` runs (the
// hash chain, the anchors, every output file's SHA-256), and what the
// ceremony produced is read from the verified entries and output files.
// A transcript that does not hold is refused by name and recorded as a
// failed input, never loaded; a rehearsal is refused unless asked for.
//
// It reads transcripts through ceremony/transcript only: the audit half
// never links the ceremony engine or the token layer.
package ceremonies

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// TranscriptSuffix ends the name of every ceremony transcript.
const TranscriptSuffix = ".transcript.jsonl"

// Files a ceremony's output directory holds besides the transcript, written
// on the connected machine after the ceremony (ceremony/online).
const (
	importResultFile    = "import-result.json"
	pcaImportResultFile = "pca-import-result.json"
	manifestFile        = "import-manifest.json"
)

// Options say what the loader accepts.
type Options struct {
	// AllowRehearsal loads a rehearsal's transcript (marked as one); by
	// default it is refused: a rehearsal is never evidence of a key's birth.
	AllowRehearsal bool
	// Expect is the final hash written on the signed paper, when the
	// reviewer has it: the transcript must end with it.
	Expect []byte
	// ExpectFor gives Ingest the paper's final hash per path, as given
	// (a ceremony directory or transcript); it overrides Expect there.
	ExpectFor map[string][]byte
}

// RefusedError is a transcript that was not loaded, and why.
type RefusedError struct {
	Path   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("ceremony transcript %s refused: %s", e.Path, e.Reason)
}

// IsCeremony reports whether path is a ceremony's evidence: a transcript
// file, or a directory holding one at its top.
func IsCeremony(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	if !fi.IsDir() {
		return strings.HasSuffix(path, TranscriptSuffix)
	}
	found, _ := filepath.Glob(filepath.Join(path, "*"+TranscriptSuffix))
	return len(found) > 0
}

// TranscriptOf names the transcript of a ceremony path: the file itself,
// or the one transcript at the top of the directory.
func TranscriptOf(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return path, nil
	}
	found, _ := filepath.Glob(filepath.Join(path, "*"+TranscriptSuffix))
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s holds no ceremony transcript (*%s)", path, TranscriptSuffix)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s holds %d ceremony transcripts: give each ceremony's transcript by name", path, len(found))
}

// Load verifies the transcript of a ceremony path and returns the ceremony
// as it is stored. A transcript that fails verification, is incomplete,
// contradicts the paper's hash or (without AllowRehearsal) comes from a
// rehearsal is a *RefusedError naming the reason.
func Load(path string, o Options) (*store.Ceremony, error) {
	tr, err := TranscriptOf(path)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(tr)
	if err != nil {
		return nil, fmt.Errorf("read ceremony transcript: %w", err)
	}
	refuse := func(format string, a ...any) error {
		return &RefusedError{Path: tr, Reason: fmt.Sprintf(format, a...)}
	}
	rep, reason := verify(tr, o.Expect)
	if reason != "" {
		return nil, refuse("%s", reason)
	}
	first := rep.Entries[0]
	final, _ := rep.Final() // Check refused an incomplete transcript
	if first.Rehearsal && !o.AllowRehearsal {
		return nil, refuse("it is a REHEARSAL transcript (throwaway token, outputs not for production): a rehearsal is not evidence of a key's birth (load it with --allow-rehearsal to see it marked as one)")
	}
	sum := sha256.Sum256(raw)
	c := &store.Ceremony{
		FinalHash: final.Hash, CeremonyID: first.Detail("ceremony id"), Kind: first.Detail("kind"), Title: first.Detail("title"),
		ScriptSHA256: first.Detail("script sha256"), BinarySHA256: first.Detail("binary sha256"), BinaryVersion: first.Detail("binary version"),
		Started: first.Time.UTC(), Ended: final.Time.UTC(), Rehearsal: first.Rehearsal, Anchors: anchors(rep, o.Expect != nil),
		Entries: len(rep.Entries), TranscriptPath: tr, TranscriptSHA256: sum[:], TranscriptSize: int64(len(raw)),
	}
	seen := map[store.Participant]bool{}
	for _, e := range rep.Entries {
		for _, a := range e.Actors {
			p := store.Participant{Name: a.Name, Role: a.Role}
			if !seen[p] {
				seen[p] = true
				c.Participants = append(c.Participants, p)
			}
		}
	}
	dir := filepath.Dir(tr)
	switch c.Kind {
	case "byok-wrap":
		b, err := byokFacts(rep, dir, final.Hash)
		if err != nil {
			return nil, refuse("%v", err)
		}
		c.Facts.BYOK = b
	case "ca-signing":
		if cert := certFacts(rep, dir, "sign-subordinate"); cert != nil {
			c.Facts.Certificate = cert
			pcaImport(dir, cert)
		}
	case "root-generation":
		c.Facts.Certificate = certFacts(rep, dir, "sign-certificate")
	}
	return c, nil
}

// verify checks a transcript as `ceremony verify` does (the chain, the
// anchors, every output file's SHA-256) and applies what the reviewer
// brings: it must be complete, and end with the paper's final hash when
// one is given. The reason is "" when it holds.
func verify(tr string, paper []byte) (*transcript.Report, string) {
	rep, err := transcript.Verify(tr)
	if err != nil {
		return nil, fmt.Sprintf("it does not verify: %v", err)
	}
	// The paper's hash is the anchor a reviewer brings; without it the
	// chain is accepted and the final hash printed for comparison.
	if err := rep.Check(expect(paper)); err != nil {
		return rep, strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return rep, ""
}

func expect(paper []byte) transcript.Expect {
	return transcript.Expect{FinalHash: paper, AllowUnanchored: true}
}

// anchors says in words what vouches for the transcript beyond its chain.
func anchors(rep *transcript.Report, paper bool) string {
	var out []string
	if n := len(rep.Signatures); n > 0 {
		key := sha256.Sum256(rep.Signatures[0].Key)
		out = append(out, fmt.Sprintf("%d token signature(s), key SPKI SHA-256 %x", n, key))
	}
	if rep.MACFrom != 0 {
		out = append(out, fmt.Sprintf("quorum MAC from entry %d", rep.MACFrom))
	}
	if paper {
		out = append(out, "final hash checked against the paper")
	} else {
		out = append(out, "final hash not yet compared with the signed paper")
	}
	return strings.Join(out, "; ")
}

// step is the last successful entry of a step.
func step(rep *transcript.Report, id string) (transcript.Entry, bool) {
	for i := len(rep.Entries) - 1; i >= 0; i-- {
		if e := rep.Entries[i]; e.Step == id && e.OK() {
			return e, true
		}
	}
	return transcript.Entry{}, false
}

// byokFacts reads the import parameters and choices of a byok-wrap
// ceremony (its inputs step), the wrapped material's hash (wrap step), the
// material's fingerprint (byok-key step), and the import result beside the
// files when it names this transcript.
func byokFacts(rep *transcript.Report, dir, finalHash string) (*store.BYOKFacts, error) {
	in, ok := step(rep, "inputs")
	if !ok {
		return nil, errors.New("a byok-wrap transcript without a completed inputs step")
	}
	b := &store.BYOKFacts{KeyARN: in.Detail("kms key"), KeySpec: in.Detail("key spec"), WrappingAlgorithm: in.Detail("wrapping algorithm"),
		WrappingKeySpec: in.Detail("wrapping key spec"), WrappingKeySHA256: in.Detail("wrapping public key sha256"),
		ExpirationModel: in.Detail("expiration model"), ImportType: importType(in.Detail("import type"))}
	var err error
	if b.ParametersValidTo, err = time.Parse(time.RFC3339, in.Detail("parameters valid to")); err != nil {
		return nil, fmt.Errorf("entry %d: parameters valid to: %w", in.Seq, err)
	}
	if v := in.Detail("material valid to"); v != "" {
		if b.MaterialValidTo, err = time.Parse(time.RFC3339, v); err != nil {
			return nil, fmt.Errorf("entry %d: material valid to: %w", in.Seq, err)
		}
	}
	if k, ok := step(rep, "byok-key"); ok {
		switch {
		case k.Detail("public key sha256") != "":
			b.MaterialFingerprint = "public key SHA-256 " + k.Detail("public key sha256")
		case k.Detail("key check value") != "":
			b.MaterialFingerprint = "key check value " + k.Detail("key check value")
		}
	}
	w, ok := step(rep, "wrap")
	if !ok {
		return nil, errors.New("a byok-wrap transcript without a completed wrap step")
	}
	b.EncryptedMaterialSHA256 = w.Detail("encrypted key material sha256")
	manifest := ""
	for _, o := range w.Outputs {
		if filepath.Base(o.Path) == manifestFile {
			manifest = o.SHA256
		}
	}
	b.Import = byokImport(dir, finalHash, manifest)
	return b, nil
}

// importType turns the transcript's import type text back into the API
// value ("" for a first import).
func importType(text string) string {
	for _, v := range []string{"NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"} {
		if strings.HasPrefix(text, v) {
			return v
		}
	}
	return ""
}

// byokImport reads import-result.json (written by `aws byok import` after
// the ceremony, outside the transcript) and keeps it only when it names
// this transcript's final hash and the manifest the wrap step recorded.
func byokImport(dir, finalHash, manifest string) *store.BYOKImport {
	raw, err := os.ReadFile(filepath.Join(dir, importResultFile))
	if err != nil {
		return nil
	}
	var r struct {
		KeyARN         string    `json:"keyArn"`
		KeyMaterialID  string    `json:"keyMaterialId"`
		KeyState       string    `json:"keyState"`
		ImportedAt     time.Time `json:"importedAt"`
		RequestID      string    `json:"requestId"`
		ManifestSHA256 string    `json:"manifestSha256"`
		Transcript     *struct {
			FinalHash string `json:"finalHash"`
		} `json:"transcript"`
	}
	if json.Unmarshal(raw, &r) != nil || r.Transcript == nil || r.Transcript.FinalHash != finalHash || r.ManifestSHA256 != manifest {
		return nil
	}
	return &store.BYOKImport{KeyARN: r.KeyARN, KeyMaterialID: r.KeyMaterialID, KeyState: r.KeyState, ImportedAt: r.ImportedAt.UTC(), RequestID: r.RequestID}
}

// certFacts reads the certificate a sign step wrote (an output the chain
// verified) and, for a subordinate, the CA ARN of the import JSON.
func certFacts(rep *transcript.Report, dir, stepID string) *store.CertFacts {
	e, ok := step(rep, stepID)
	if !ok {
		return nil
	}
	var out *store.CertFacts
	ca := ""
	for _, o := range e.Outputs {
		data, err := os.ReadFile(filepath.Join(dir, o.Path))
		if err != nil {
			continue
		}
		if strings.HasSuffix(o.Path, "acm-pca-import.json") {
			var doc struct {
				CertificateAuthorityArn string `json:"CertificateAuthorityArn"`
			}
			if json.Unmarshal(data, &doc) == nil {
				ca = doc.CertificateAuthorityArn
			}
			continue
		}
		if out != nil || !strings.HasSuffix(o.Path, ".pem") || strings.HasSuffix(o.Path, "chain.pem") {
			continue
		}
		blk, _ := pem.Decode(data)
		if blk == nil || blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(cert.Raw)
		out = &store.CertFacts{File: o.Path, SHA256: hex.EncodeToString(sum[:]), Size: o.Size, Serial: fmt.Sprintf("%x", cert.SerialNumber),
			Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC()}
	}
	if out != nil {
		out.CAARN = ca
	}
	return out
}

// pcaImport adds the time `aws pca import-cert` recorded, when its result
// beside the files is for this certificate.
func pcaImport(dir string, c *store.CertFacts) {
	raw, err := os.ReadFile(filepath.Join(dir, pcaImportResultFile))
	if err != nil {
		return
	}
	var r struct {
		CA         string    `json:"certificateAuthorityArn"`
		SHA256     string    `json:"certificateSha256"`
		ImportedAt time.Time `json:"importedAt"`
	}
	if json.Unmarshal(raw, &r) == nil && r.SHA256 == c.SHA256 {
		c.ImportedAt = r.ImportedAt.UTC()
		if c.CAARN == "" {
			c.CAARN = r.CA
		}
	}
}
