package transcript

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Anchors: what ties a transcript to something its file alone cannot forge.
// The hash chain only proves that the entries were not changed one by one;
// whoever can write the file can recompute every hash. Three anchors close
// that gap, each checked by whoever holds what it needs:
//
//   - a signature by the ceremony's own key (the root key) over the chain
//     head, made by the token at fixed points: once the key exists, and over
//     the final hash (the seal). Anyone holding the root certificate checks
//     it offline (Verify checks it against the key the entry names; Check
//     against a root certificate the verifier trusts);
//   - a MAC under a key derived from the quorum secret over every entry from
//     the first unlock on, which the custodians check, e.g. before a resumed
//     ceremony touches the token (CheckMACs);
//   - the final hash, read aloud and written on the signed paper, which
//     Check compares (Expect.FinalHash).

// Signature is a signature anchor: the ceremony key's signature over the
// chain head, which is the entry's Prev.
type Signature struct {
	// Key is the signing key's SubjectPublicKeyInfo (DER, base64).
	Key string `json:"key"`
	// Algorithm names the signature scheme (AnchorAlgorithm).
	Algorithm string `json:"algorithm"`
	// Value is the signature (base64): ASN.1 for ECDSA, PKCS #1 v1.5 for RSA.
	Value string `json:"value"`
}

// anchorDomain starts every message an anchor signs. Domain separation: the
// token's key also signs certificates and CRLs, always over the DER of a
// to-be-signed structure, which is an ASN.1 SEQUENCE and so starts with the
// byte 0x30; an anchor message starts with 'k' (0x6b), so it is never the
// to-be-signed bytes of a certificate, CRL, CSR or OCSP response, and a
// signature over one cannot stand for a signature over the other without a
// second preimage of the hash. The restore proof uses its own domain
// ("keyceremony restore proof v1").
const anchorDomain = "keyceremony transcript anchor v1\n"

// AnchorMessage is what a signature anchor signs: the domain and the chain
// head (the hash of the entry before the anchor entry), which commits to
// every entry up to it.
func AnchorMessage(head string) []byte {
	return []byte(anchorDomain + "chain head " + head + "\n")
}

// AnchorAlgorithm is the scheme an anchor uses with pub: ECDSA with the
// hash matched to the curve, RSA PKCS #1 v1.5 with SHA-256.
func AnchorAlgorithm(pub crypto.PublicKey) (string, crypto.Hash, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return "ecdsa-sha256", crypto.SHA256, nil
		case elliptic.P384():
			return "ecdsa-sha384", crypto.SHA384, nil
		case elliptic.P521():
			return "ecdsa-sha512", crypto.SHA512, nil
		}
	case *rsa.PublicKey:
		return "rsa-pkcs1-sha256", crypto.SHA256, nil
	}
	return "", 0, fmt.Errorf("a transcript anchor cannot be made with a %T key", pub)
}

// AnchorDigest is the digest a token signs for an anchor over head, with the
// hash the signer is given and the algorithm to record.
func AnchorDigest(pub crypto.PublicKey, head string) (digest []byte, h crypto.Hash, alg string, err error) {
	alg, h, err = AnchorAlgorithm(pub)
	if err != nil {
		return nil, 0, "", err
	}
	hh := h.New()
	hh.Write(AnchorMessage(head))
	return hh.Sum(nil), h, alg, nil
}

// NewSignature records a signature anchor made with pub.
func NewSignature(pub crypto.PublicKey, alg string, sig []byte) (*Signature, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &Signature{Key: base64.StdEncoding.EncodeToString(spki), Algorithm: alg, Value: base64.StdEncoding.EncodeToString(sig)}, nil
}

// PublicKey decodes the signing key.
func (s *Signature) PublicKey() (crypto.PublicKey, []byte, error) {
	der, err := base64.StdEncoding.DecodeString(s.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("the anchor's key is not base64: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, fmt.Errorf("the anchor's key is not a public key: %w", err)
	}
	return pub, der, nil
}

// check verifies the signature over head.
func (s *Signature) check(head string) error {
	pub, _, err := s.PublicKey()
	if err != nil {
		return err
	}
	digest, h, alg, err := AnchorDigest(pub, head)
	if err != nil {
		return err
	}
	if alg != s.Algorithm {
		return fmt.Errorf("the anchor names algorithm %q, but its key signs with %q", s.Algorithm, alg)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Value)
	if err != nil {
		return fmt.Errorf("the anchor's signature is not base64: %w", err)
	}
	ok := false
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(p, digest, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	}
	if !ok {
		return errors.New("the token's signature does not verify over the hash of the entry before it: the transcript was changed after it was signed")
	}
	return nil
}

// macDomain separates the transcript MAC from any other use of its key.
const macDomain = "keyceremony transcript mac v1\n"

// entryMAC is HMAC-SHA-256(key, domain || entry hash), in hex.
func entryMAC(key []byte, hash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macDomain))
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckMACs checks the MAC of every entry that carries one with key (derived
// from the quorum secret). Verify has already checked that no entry after the
// first MAC'd one lacks a MAC. The error names the first entry that fails.
func CheckMACs(entries []Entry, key []byte) error {
	for _, e := range entries {
		if e.MAC == "" {
			continue
		}
		want := entryMAC(key, e.Hash)
		if !hmac.Equal([]byte(want), []byte(e.MAC)) {
			return &VerifyError{Seq: e.Seq, Step: e.Step, Reason: "its quorum MAC does not match: the entry (or one before it) was written without the quorum, or the shares belong to another quorum"}
		}
	}
	return nil
}

// PlanDetail is the detail of the first entry that records the anchor plan.
const PlanDetail = "anchor plan (json)"

// PlanFormat identifies the anchor plan's format.
const PlanFormat = "keyceremony-anchors/v1"

// Plan is what the first entry promises: the steps of the ceremony in order
// and which of them carry which anchor. A transcript without a plan was
// written before anchors existed (or had them removed); Check says so.
type Plan struct {
	Format string `json:"format"`
	// Steps are the ceremony's steps, in order, from the first entry to the
	// closing one (the transcript PDF's entry follows them).
	Steps []string `json:"steps"`
	// MACFrom is the step from whose first successful entry on every entry
	// carries the quorum's MAC ("" when the kind has no quorum).
	MACFrom string `json:"mac_from"`
	// Signed are the steps whose entries carry a signature anchor.
	Signed []string `json:"signed"`
	// Key says which key signs the anchors.
	Key string `json:"key"`
	// Paper says what a third party compares the final hash with.
	Paper string `json:"paper"`
}

// PlanOf reads the plan the first entry records, or nil.
func PlanOf(first Entry) (*Plan, error) {
	raw := first.Detail(PlanDetail)
	if raw == "" {
		return nil, nil
	}
	var p Plan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, fmt.Errorf("the anchor plan is not readable: %w", err)
	}
	if p.Format != PlanFormat {
		return nil, fmt.Errorf("the anchor plan has format %q, not %q", p.Format, PlanFormat)
	}
	return &p, nil
}

// Detail is the plan as the first entry records it.
func (p Plan) Detail() (Detail, error) {
	p.Format = PlanFormat
	raw, err := json.Marshal(p)
	if err != nil {
		return Detail{}, err
	}
	return Detail{Key: PlanDetail, Value: string(raw)}, nil
}

func (p *Plan) signs(step string) bool {
	for _, s := range p.Signed {
		if s == step {
			return true
		}
	}
	return false
}
