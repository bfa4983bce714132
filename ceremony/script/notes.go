package script

import (
	"fmt"
	"strings"
)

// The comments Encode writes. They explain the script to its reviewer, and
// some depend on the value chosen (enrol, air_gap, key.backup, keep_in_token,
// allow_host_steps...), so a comment never contradicts the value under it.

// headers say at the top of a script what the ceremony does.
var headers = map[Kind]string{
	RootGeneration: "Root CA key generation ceremony.\n\n" +
		"A new m-of-n custodian quorum is created and its shares issued, the token is enrolled under it, the root key " +
		"pair is generated inside the token (and, with key.backup, wrapped under a quorum-derived key to a backup file), " +
		"and the self-signed root certificate is linted with zlint and signed.",
	KeyBackup: "Key backup ceremony.\n\n" +
		"Wraps an existing key, created extractable and wrap-with-trusted by a root ceremony, under the quorum-derived " +
		"backup KEK. The token was enrolled under the quorum by that ceremony.",
	KeyRestore: "Key restore ceremony.\n\n" +
		"Restores a root key from the backup written by a root-generation ceremony into another token, under the same " +
		"custodian quorum, and proves the restored key by signing a challenge that is verified with the root certificate.",
	CASigning: "CA signing ceremony.\n\n" +
		"The root created by a root-generation ceremony signs a subordinate CA certificate from its CSR (for example the " +
		"CSR of an AWS Private CA subordinate: aws acm-pca get-certificate-authority-csr), a cross-certificate and/or " +
		"the root's CRL. A certificate is built from the profile below, never from extensions the CSR requests; it is " +
		"linted with zlint before the token signs, and the token's signature is verified.",
	CRLIssuance: "Root CRL ceremony.\n\n" +
		"The root key on the token signs the root's certificate revocation list. Run it before the previous CRL's next " +
		"update (yearly for a root that issues only CA certificates). The CRL number comes from the counter file on the " +
		"output medium and is recorded in the transcript; it increases with every CRL.",
	BYOKWrap: "BYOK wrapping ceremony for AWS KMS key import.\n\n" +
		"Key material in the token is wrapped, inside the token, under the wrapping public key AWS KMS handed out for one " +
		"KMS key, and written as the files aws kms import-key-material takes. Import parameters expire 24 hours after AWS " +
		"issues them: fetch them on the connected machine, review this script, hold the ceremony and run the import within " +
		"that window.\n\n" +
		"On the connected machine, before the ceremony (keyceremony aws byok prepare does the same):\n" +
		"   aws kms create-key --origin EXTERNAL --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT\n" +
		"   aws kms get-parameters-for-import --key-id KEY_ARN \\\n" +
		"       --wrapping-algorithm RSA_AES_KEY_WRAP_SHA_256 --wrapping-key-spec RSA_4096 > import-parameters.json\n" +
		"and carry import-parameters.json to the laptop.",
}

// reviewNote ends every header.
const reviewNote = "Review this file before the ceremony and keep the reviewed copy: the engine prints its SHA-256 at the " +
	"start and records it in the transcript, and the executed copy must be byte-identical. A script never contains a " +
	"PIN, share or passphrase. Relative paths are relative to this file's directory."

func headerFor(k Kind) string {
	h, ok := headers[k]
	if !ok {
		h = "Key ceremony script."
	}
	h += "\n\n" + reviewNote
	switch k {
	case RootGeneration, KeyRestore:
		h += " keyceremony ceremony run FILE --rehearse runs it against a throwaway SoftHSM token first."
	default:
		h += " keyceremony ceremony plan FILE lists its steps and checks its inputs without touching the token."
	}
	return h
}

// notes are the comments above keys, by path (list indexes left out).
var notes = map[string]func(s *Script) string{
	"token.uri": func(s *Script) string {
		if s.Token.Enrol == EnrolInitialize {
			return "A blank token is selected by serial= (USB tokens), slot-id= or token=."
		}
		return "The token is pinned by its serial, so the ceremony cannot run on another token."
	},
	"token.enrol": func(s *Script) string {
		switch s.Token.Enrol {
		case EnrolInitialize:
			return "initialize: the blank token is initialised with the label below, and an SO PIN and user PIN derived from the quorum secret."
		case EnrolChangePIN:
			return "change-pin: the token is initialised; its current SO and user PINs are entered once and changed to PINs derived from the quorum secret."
		case EnrolQuorum:
			return "quorum: the token was enrolled under the quorum by an earlier ceremony; custodians present their shares to unlock it."
		}
		return ""
	},
	"participants": func(*Script) string {
		return "Everyone present, by name: administrator (runs the ceremony), witness (confirms every step), custodian (holds a share), auditor."
	},
	"quorum.threshold": func(s *Script) string {
		if n := len(s.Quorum.Custodians); n > 0 && s.Quorum.Threshold > 0 {
			return fmt.Sprintf("Any %d of the %d custodians unlock the token.", s.Quorum.Threshold, n)
		}
		return ""
	},
	"quorum.custodians": func(s *Script) string {
		return fmt.Sprintf("Share index order: %s holds share 1.", s.Quorum.Custodians[0])
	},
	"quorum.delivery": func(*Script) string {
		return "card: a printed share card (PDF); file: a share file encrypted under the custodian's passphrase."
	},
	"quorum.record": func(*Script) string {
		return "The quorum record written by the ceremony that created the quorum; custodians present their shares to unlock the token."
	},
	"recovery": func(s *Script) string {
		if s.Kind == RootGeneration {
			return "The recovery quorum: cards of its own, from which alone the backup KEK is derived. They are presented only at key-backup and key-restore ceremonies, so a routine ceremony (ca-signing, crl, byok-wrap) never holds what opens a backup."
		}
		return "The recovery quorum written by the root ceremony: its custodians present their cards to derive the backup KEK."
	},
	"recovery.medium": func(*Script) string {
		return "The backup file goes to this medium, stored apart from the output medium (refused inside the output directory)."
	},
	"restore.repair_padding": func(s *Script) string {
		if s.Restore.RepairPadding {
			return "true: a backup made by a token whose AES key wrap with padding is not RFC 5649 compliant (SoftHSM 2.6) is repaired in host memory before the unwrap (recorded)."
		}
		return ""
	},
	"token.module_sha256": func(*Script) string {
		return "Pins the PKCS#11 library file: a different file stops the ceremony."
	},
	"signing.subordinate.allow_sha1_csr": func(s *Script) string {
		if s.Signing.Subordinate.AllowSHA1CSR {
			return "true: a CSR signed with SHA-1 is accepted (its signature only proves possession of the key)."
		}
		return ""
	},
	"preflight.air_gap": func(s *Script) string {
		switch s.Preflight.AirGap {
		case "block":
			return "block: a network interface other than loopback that is up stops the ceremony."
		case "warn":
			return "warn: a network interface that is up is shown and recorded, but does not stop the ceremony."
		}
		return ""
	},
	"key.backup": func(s *Script) string {
		if s.Key.Backup {
			return "true: the private key is created extractable (wrap with trusted keys only) and wrapped under a quorum-derived KEK to a backup file."
		}
		return "false: the private key is created non-extractable and can never be backed up."
	},
	"certificate.max_path_length": func(s *Script) string {
		return pathLengthNote(s.Certificate.MaxPathLength, "-1: no pathLenConstraint (CA/Browser Forum: roots should not set one).")
	},
	"backup.key_label": func(*Script) string {
		return "The key must have been created extractable and wrap-with-trusted (key.backup: true in its root ceremony)."
	},
	"restore.label": func(*Script) string { return "The label of the restored key; by default the label in the backup." },
	"signing.issuer.key_label": func(*Script) string {
		return "The root key is the private key on the token whose public key is the certificate's; key_label narrows the search."
	},
	"signing.subordinate.csr": func(*Script) string {
		return "PEM or DER. Its signature, key type and size are checked before the token is unlocked."
	},
	"signing.subordinate.acm_pca_arn": func(*Script) string {
		return "For an AWS Private CA: written into the import JSON."
	},
	"signing.subordinate.profile.subject": func(*Script) string {
		return "The certificate carries this subject; set accept_csr_subject: true (and drop subject) to take the CSR's subject as it is."
	},
	"signing.subordinate.profile.accept_csr_subject": func(*Script) string {
		return "The certificate carries the CSR's subject as it is."
	},
	"signing.subordinate.profile.validity_days": func(*Script) string {
		return "Counted from the ceremony and clipped to the root's end; or give not_after (refused if it is after the root's end)."
	},
	"signing.subordinate.profile.max_path_length": func(s *Script) string {
		return pathLengthNote(s.Signing.Subordinate.Profile.MaxPathLength, "")
	},
	"signing.subordinate.profile.digital_signature": func(s *Script) string {
		return digitalSignatureNote(s.Signing.Subordinate.Profile.DigitalSignature)
	},
	"signing.cross_certificate.profile.digital_signature": func(s *Script) string {
		return digitalSignatureNote(s.Signing.CrossCertificate.Profile.DigitalSignature)
	},
	"signing.subordinate.profile.allowed_keys": func(*Script) string {
		return "The key types accepted in the CSR."
	},
	"signing.cross_certificate.certificate": func(*Script) string {
		return "The other CA's own (usually self-signed) certificate: the cross-certificate carries its subject, key and validity."
	},
	"signing.cross_certificate.profile.max_path_length": func(s *Script) string {
		return pathLengthNote(s.Signing.CrossCertificate.Profile.MaxPathLength, "")
	},
	"signing.crl.counter_directory": func(*Script) string {
		return "The file crlnumber in this directory holds the last CRL number; every CRL ceremony of this root uses the same directory on the output medium."
	},
	"signing.crl.previous": func(*Script) string {
		return "The last CRL issued: the new number must be above its number."
	},
	"signing.crl.revoked": func(s *Script) string {
		if len(s.Signing.CRL.Revoked) == 0 {
			return "Nothing is revoked. A revoked certificate is listed as:\n" +
				`    - {serial: "5c:3a:...", revoked_at: 2026-12-01T00:00:00Z, reason: key-compromise}`
		}
		return ""
	},
	"byok.parameters": func(*Script) string {
		return "The JSON printed by aws kms get-parameters-for-import (or the import-parameters.json of the connected side's " +
			"prepare step). Instead, separate files as the console downloads them: public_key, import_token, key_id and parameters_valid_to."
	},
	"byok.public_key": func(*Script) string {
		return "The parameters as the console downloads them: the wrapping public key and the import token, with the key ID and expiry copied from AWS."
	},
	"byok.key_spec": func(*Script) string {
		return "The KMS key's spec and the algorithm the parameters were requested for."
	},
	"byok.key.source": func(s *Script) string {
		switch s.BYOK.Key.Source {
		case KeyGenerate:
			return "generate: a new key in the token, made extractable for this import."
		case KeyExisting:
			return "existing: a token key named by uri (it must have been made extractable)."
		}
		return ""
	},
	"byok.keep_in_token": func(s *Script) string {
		if *s.BYOK.KeepInToken {
			return "true: the token keeps its copy of the material, as your own escrow copy."
		}
		return "false: the token's copy is destroyed once the files are written (the destruction is recorded)."
	},
	"byok.allow_host_steps": func(s *Script) string {
		if s.BYOK.AllowHostSteps {
			return "true: a token without the mechanism composes it from others, and some steps may then run in host memory " +
				"(SoftHSM 2.6: the SHA_256 algorithms, and ECC material under RSAES_OAEP_*). The plan is shown before anything runs."
		}
		return "false: a wrap in which any step would run in host memory is refused."
	},
	"byok.expiration.model": func(*Script) string {
		return "KEY_MATERIAL_EXPIRES with valid_to or valid_for_days (at most 365), or KEY_MATERIAL_DOES_NOT_EXPIRE."
	},
	"byok.import_type": func(*Script) string {
		return "Empty for a first import; NEW_KEY_MATERIAL to rotate a SYMMETRIC_DEFAULT key by re-import (then aws kms " +
			"rotate-key-on-demand); EXISTING_KEY_MATERIAL to re-import the same material."
	},
	"output.prefix": func(*Script) string { return "Starts every output file name; by default the id." },
}

func pathLengthNote(n *int, noLimit string) string {
	switch {
	case n == nil:
		return ""
	case *n == -1 && noLimit != "":
		return noLimit
	case *n == -1:
		return "-1: no pathLenConstraint."
	case *n == 0:
		return "0: the CA issues end-entity certificates only."
	}
	return fmt.Sprintf("%d: at most %d CA certificate%s may follow this one in a chain.", *n, *n, plural(*n))
}

func digitalSignatureNote(on bool) string {
	if on {
		return "true: the key usage adds digitalSignature to certificate and CRL signing (a CA that signs OCSP responses itself needs it)."
	}
	return "false: the key usage is certificate and CRL signing only."
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func noteFor(path string, s *Script) string {
	f := notes[path]
	if f == nil {
		return ""
	}
	return strings.TrimSpace(f(s))
}
