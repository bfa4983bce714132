package ui

import (
	"time"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/script"
)

// fieldDecl declares one field of the script form: the YAML path it edits
// (the path script.Problem names), where and how it is shown, for which
// kinds, and the editor that binds it to the script. Adding a key to the
// script language is adding one declaration here; TestFormCoversScriptLanguage
// fails until every key has one, and the template round trip fails when a
// template holds a value the form drops.
type fieldDecl struct {
	path    string
	section string
	label   string
	hint    string
	kinds   []script.Kind             // nil: every kind
	when    func(*script.Script) bool // nil: always shown (for its kinds)
	covers  []string                  // further YAML paths the editor writes
	make    func(c *formCtx) editor
}

func (d fieldDecl) only(kinds ...script.Kind) fieldDecl          { d.kinds = kinds; return d }
func (d fieldDecl) showIf(w func(*script.Script) bool) fieldDecl { d.when = w; return d }

const (
	secCeremony = "Ceremony"
	secToken    = "Token"
	secPeople   = "People"
	secQuorum   = "Quorum"
	secRecovery = "Recovery quorum (backup)"
	secPre      = "Preflight checks"
	secKey      = "Root key"
	secCert     = "Root certificate"
	secBackup   = "Key backup"
	secRestore  = "Key restore"
	secIssuer   = "Issuer (the root)"
	secSub      = "Subordinate CA certificate"
	secCross    = "Cross-certificate"
	secCRL      = "CRL"
	secParams   = "Import parameters"
	secMaterial = "Key material"
	secImport   = "Expiry and import"
	secOutput   = "Output"
)

var (
	recordKinds = []script.Kind{script.KeyBackup, script.KeyRestore, script.CASigning, script.CRLIssuance, script.BYOKWrap}
	signKinds   = []script.Kind{script.CASigning, script.CRLIssuance}
)

// ---- the declarations

func scriptFields() []fieldDecl {
	fields := []fieldDecl{
		{path: "kind", section: secCeremony, label: "Kind", make: func(c *formCtx) editor { return newKindEditor() }},
		text("id", secCeremony, "Ceremony ID", "3-64 characters: lower-case letters, digits, '.' and '-'. Printed on share cards; names the outputs.", func(s *script.Script) *string { return &s.ID }),
		text("title", secCeremony, "Title", "What the transcript and its PDF are titled.", func(s *script.Script) *string { return &s.Title }),
		multiText("description", secCeremony, "Description", "Optional notes for the reviewers.", func(s *script.Script) *string { return &s.Description }),

		tokenPicker(),
		text("token.module", secToken, "PKCS#11 module", "Absolute path of the token's PKCS#11 library.", func(s *script.Script) *string { return &s.Token.Module }),
		text("token.uri", secToken, "Token URI", "Selects the token: pkcs11:token=…;serial=… (an initialised token must be pinned by its serial).", func(s *script.Script) *string { return &s.Token.URI }),
		{path: "token.enrol", section: secToken, label: "Enrolment", hint: "How the token comes under the quorum.", make: func(c *formCtx) editor {
			get, set := stringChoice(func(s *script.Script) *script.Enrol { return &s.Token.Enrol })
			return newChoiceEditor(c, enrolChoices(c.form.kind), get, set)
		}},
		text("token.module_sha256", secToken, "Module SHA-256", "Optional: pins the PKCS#11 library file (sha256sum of it); a different file stops the ceremony.", func(s *script.Script) *string { return &s.Token.ModuleSHA256 }),
		text("token.label", secToken, "Token label", "Written by C_InitToken, at most 32 bytes.", func(s *script.Script) *string { return &s.Token.Label }).
			showIf(func(s *script.Script) bool { return s.Token.Enrol == script.EnrolInitialize }),

		participants(),

		optFile("quorum.record", secQuorum, "Quorum record", "The .quorum.json written by the ceremony that created the quorum.", inputRecord, true,
			func(s *script.Script) **script.Input { return &s.Quorum.Record }).only(recordKinds...),
		number("quorum.threshold", secQuorum, "Threshold", "How many custodians must present their shares (at least 2). With a quorum record: optional, checked against it.", func(s *script.Script) *int { return &s.Quorum.Threshold }),
		custodians(),
		options("quorum.delivery", secQuorum, "Share delivery", "card: a printed share card; file: a share file encrypted under the custodian's passphrase. Neither ticked: both.", []string{"card", "file"},
			func(s *script.Script) *[]string { return &s.Quorum.Delivery }).only(script.RootGeneration),

		pick("preflight.air_gap", secPre, "Air gap", "", withUnset("(not set: block)", []choice{
			{"block", "block — a network interface that is up stops the ceremony"},
			{"warn", "warn — it is shown and recorded, but does not stop the ceremony"}}),
			func(s *script.Script) *string { return &s.Preflight.AirGap }),
		number("preflight.min_free_mb", secPre, "Free space (MB)", "Free space the output directory needs; empty: 16.", func(s *script.Script) *int { return &s.Preflight.MinFreeMB }),

		pick("key.type", secKey, "Key type", "", withUnset("(not set: ec-p384)", plainChoices(script.RootKeyTypes...)), func(s *script.Script) *string { return &keyOf(s).Type }).only(script.RootGeneration),
		text("key.label", secKey, "Key label", "CKA_LABEL of the key pair on the token.", func(s *script.Script) *string { return &keyOf(s).Label }).only(script.RootGeneration),
		check("key.backup", secKey, "Backup", "Back up the private key", "Ticked: the key is created extractable (wrap with trusted keys only) and wrapped to a backup file under a quorum-derived key. Not ticked: it can never leave the token.",
			func(s *script.Script) *bool { return &keyOf(s).Backup }).only(script.RootGeneration),

		number("recovery.threshold", secRecovery, "Threshold", "How many recovery custodians open a backup (at least 2).", func(s *script.Script) *int { return &recoveryOf(s).Threshold }).only(script.RootGeneration).showIf(hasBackup),
		list("recovery.custodians", secRecovery, "Custodians", "One name per line, in share order: other people than the routine quorum's, or at least other cards kept apart.", func(s *script.Script) *[]string { return &recoveryOf(s).Custodians }).only(script.RootGeneration).showIf(hasBackup),
		options("recovery.delivery", secRecovery, "Card delivery", "card: a printed share card; file: a share file encrypted under the custodian's passphrase. Neither ticked: both.", []string{"card", "file"},
			func(s *script.Script) *[]string { return &recoveryOf(s).Delivery }).only(script.RootGeneration).showIf(hasBackup),
		optFile("recovery.record", secRecovery, "Recovery quorum record", "The .recovery-quorum.json written by the root ceremony.", inputRecord, true,
			func(s *script.Script) **script.Input { return &recoveryOf(s).Record }).only(script.KeyBackup, script.KeyRestore),
		text("recovery.medium", secRecovery, "Backup medium", "Directory of the medium the backup is written to, kept apart from the output medium (never inside the output directory).", func(s *script.Script) *string { return &recoveryOf(s).Medium }).
			only(script.RootGeneration, script.KeyBackup).showIf(func(s *script.Script) bool { return s.Kind == script.KeyBackup || hasBackup(s) }),
	}
	fields = append(fields, nameFields("certificate.subject", secCert, nil, func(s *script.Script) *script.Name { return &certOf(s).Subject }, script.RootGeneration)...)
	fields = append(fields,
		when("certificate.not_before", secCert, "Not before", "", func(s *script.Script) *time.Time { return &certOf(s).NotBefore }).only(script.RootGeneration),
		when("certificate.not_after", secCert, "Not after", "", func(s *script.Script) *time.Time { return &certOf(s).NotAfter }).only(script.RootGeneration),
		optNumber("certificate.max_path_length", secCert, "Path length", "basicConstraints pathLenConstraint; -1: none (roots should not set one).", func(s *script.Script) **int { return &certOf(s).MaxPathLength }).only(script.RootGeneration),
		pick("certificate.signature_algorithm", secCert, "Signature algorithm", "", withUnset("(not set: the one matched to the key)", plainChoices(signatureAlgorithmNames()...)),
			func(s *script.Script) *string { return &certOf(s).SignatureAlgorithm }).only(script.RootGeneration),
		list("certificate.ignore_lints", secCert, "Ignored lints", "zlint lint names that do not apply; their findings are still recorded.", func(s *script.Script) *[]string { return &certOf(s).IgnoreLints }).only(script.RootGeneration),

		text("backup.key_label", secBackup, "Key label", "The label of the key to back up; it was created with key.backup.", func(s *script.Script) *string { return &backupOf(s).KeyLabel }).only(script.KeyBackup),

		file("restore.backup", secRestore, "Key backup file", "The .key-backup.json written by the root ceremony.", inputPlain, func(s *script.Script) *script.Input { return &restoreOf(s).Backup }).only(script.KeyRestore),
		file("restore.certificate", secRestore, "Root certificate", "Proves the restored key.", inputCertificate, func(s *script.Script) *script.Input { return &restoreOf(s).Certificate }).only(script.KeyRestore),
		check("restore.repair_padding", secRestore, "Padding", "Repair a non-RFC 5649 backup", "For a backup made by a token whose AES key wrap with padding is not RFC 5649 compliant (the backup file records it); the repair is recorded.",
			func(s *script.Script) *bool { return &restoreOf(s).RepairPadding }).only(script.KeyRestore),
		text("restore.label", secRestore, "Label", "For the restored key; empty: the label in the backup.", func(s *script.Script) *string { return &restoreOf(s).Label }).only(script.KeyRestore),

		file("signing.issuer.certificate", secIssuer, "Root certificate", "Written by the root ceremony.", inputCertificate, func(s *script.Script) *script.Input { return &signingOf(s).Issuer.Certificate }).only(signKinds...),
		text("signing.issuer.key_label", secIssuer, "Root key label", "Optional: narrows the search for the root key on the token.", func(s *script.Script) *string { return &signingOf(s).Issuer.KeyLabel }).only(signKinds...),
		pick("signing.issuer.signature_algorithm", secIssuer, "Signature algorithm", "", withUnset("(not set: the root certificate's own)", plainChoices(signatureAlgorithmNames()...)),
			func(s *script.Script) *string { return &signingOf(s).Issuer.SignatureAlgorithm }).only(signKinds...),

		toggle("signing.subordinate", secSub, "Subordinate CA", "Sign a subordinate CA certificate from its CSR", "",
			func(s *script.Script) bool { return s.Signing != nil && s.Signing.Subordinate != nil },
			func(s *script.Script, on bool) {
				if on {
					subOf(s)
				} else {
					signingOf(s).Subordinate = nil
				}
			}).only(script.CASigning),
		file("signing.subordinate.csr", secSub, "CSR", "PEM or DER, e.g. from aws acm-pca get-certificate-authority-csr.", inputCSR, func(s *script.Script) *script.Input { return &subOf(s).CSR }).only(script.CASigning).showIf(hasSub),
		text("signing.subordinate.acm_pca_arn", secSub, "AWS Private CA ARN", "Optional: written into the import JSON.", func(s *script.Script) *string { return &subOf(s).ACMPCAARN }).only(script.CASigning).showIf(hasSub),
		check("signing.subordinate.allow_sha1_csr", secSub, "SHA-1 CSR", "Accept a CSR signed with SHA-1", "Refused otherwise.",
			func(s *script.Script) *bool { return &subOf(s).AllowSHA1CSR }).only(script.CASigning).showIf(hasSub),
		check("signing.subordinate.profile.accept_csr_subject", secSub, "Subject", "Take the CSR's subject as it is", "Otherwise the certificate carries the subject below.",
			func(s *script.Script) *bool { return &subOf(s).Profile.AcceptCSRSubject }).only(script.CASigning).showIf(hasSub),
	)
	subjectShown := func(s *script.Script) bool { return hasSub(s) && !s.Signing.Subordinate.Profile.AcceptCSRSubject }
	fields = append(fields, nameFields("signing.subordinate.profile.subject", secSub, subjectShown, subjectOf, script.CASigning)...)
	fields = append(fields, profileFields("signing.subordinate.profile", secSub, hasSub, func(s *script.Script) *script.CAProfile { return &subOf(s).Profile }, false)...)
	fields = append(fields,
		toggle("signing.cross_certificate", secCross, "Cross-certificate", "Cross-sign another CA's certificate", "",
			func(s *script.Script) bool { return s.Signing != nil && s.Signing.CrossCertificate != nil },
			func(s *script.Script, on bool) {
				if on {
					crossOf(s)
				} else {
					signingOf(s).CrossCertificate = nil
				}
			}).only(script.CASigning),
		file("signing.cross_certificate.certificate", secCross, "Certificate to cross-sign", "The other CA's own certificate: its subject, key and validity are kept.", inputCertificate,
			func(s *script.Script) *script.Input { return &crossOf(s).Certificate }).only(script.CASigning).showIf(hasCross),
	)
	fields = append(fields, profileFields("signing.cross_certificate.profile", secCross, hasCross, func(s *script.Script) *script.CAProfile { return &crossOf(s).Profile }, true)...)
	fields = append(fields,
		toggle("signing.crl", secCRL, "CRL", "Issue the root's CRL", "",
			func(s *script.Script) bool { return s.Signing != nil && s.Signing.CRL != nil },
			func(s *script.Script, on bool) {
				if on {
					crlOf(s)
				} else {
					signingOf(s).CRL = nil
				}
			}).only(script.CASigning),
		text("signing.crl.counter_directory", secCRL, "Counter directory", "Holds the file crlnumber with the last CRL number: the same directory on the output medium for every CRL of this root.",
			func(s *script.Script) *string { return &crlOf(s).CounterDirectory }).only(signKinds...).showIf(hasCRL),
		optFile("signing.crl.previous", secCRL, "Previous CRL", "Optional: the last CRL issued; the new number must be above its number.", inputCRL, false,
			func(s *script.Script) **script.Input { return &crlOf(s).Previous }).only(signKinds...).showIf(hasCRL),
		number("signing.crl.next_update_days", secCRL, "Next update (days)", "1 to 366 days from this update to the next.", func(s *script.Script) *int { return &crlOf(s).NextUpdateDays }).only(signKinds...).showIf(hasCRL),
		revoked().only(signKinds...).showIf(hasCRL),
		list("signing.crl.ignore_lints", secCRL, "Ignored lints", "zlint lint names that do not apply; their findings are still recorded.", func(s *script.Script) *[]string { return &crlOf(s).IgnoreLints }).only(signKinds...).showIf(hasCRL),
	)
	fields = append(fields, byokFields()...)
	fields = append(fields,
		text("output.directory", secOutput, "Output directory", "Relative to the script's directory unless absolute; a rehearsal writes beside it, into …-rehearsal.", func(s *script.Script) *string { return &s.Output.Directory }),
		text("output.prefix", secOutput, "File name prefix", "Starts every output file name; empty: the ceremony ID.", func(s *script.Script) *string { return &s.Output.Prefix }),
	)
	return fields
}

func hasSub(s *script.Script) bool   { return s.Signing != nil && s.Signing.Subordinate != nil }
func hasCross(s *script.Script) bool { return s.Signing != nil && s.Signing.CrossCertificate != nil }
func hasCRL(s *script.Script) bool   { return s.Signing != nil && s.Signing.CRL != nil }

// nameFields are a distinguished name's fields.
func nameFields(path, section string, shown func(*script.Script) bool, name func(*script.Script) *script.Name, kind script.Kind) []fieldDecl {
	f := func(key, label, hint string, ptr func(n *script.Name) *string) fieldDecl {
		return text(path+"."+key, section, label, hint, func(s *script.Script) *string { return ptr(name(s)) }).only(kind).showIf(shown)
	}
	return []fieldDecl{
		f("common_name", "Common name", "", func(n *script.Name) *string { return &n.CommonName }),
		f("organization", "Organization", "A CA certificate needs one (zlint e_ca_organization_name_missing).", func(n *script.Name) *string { return &n.Organization }),
		f("organizational_unit", "Organizational unit", "", func(n *script.Name) *string { return &n.OrganizationalUnit }),
		f("country", "Country", "Two capital letters (ISO 3166), e.g. DE. A CA certificate needs one (zlint e_ca_country_name_missing).", func(n *script.Name) *string { return &n.Country }),
		f("province", "State or province", "", func(n *script.Name) *string { return &n.Province }),
		f("locality", "Locality", "", func(n *script.Name) *string { return &n.Locality }),
	}
}

// profileFields are an issued CA certificate's profile. A cross-certificate
// keeps the original's subject and validity, so the language forbids
// subject, accept_csr_subject and validity_days there.
func profileFields(path, section string, shown func(*script.Script) bool, prof func(*script.Script) *script.CAProfile, cross bool) []fieldDecl {
	kind := script.CASigning
	l := func(key, label, hint string, ptr func(p *script.CAProfile) *[]string) fieldDecl {
		return list(path+"."+key, section, label, hint, func(s *script.Script) *[]string { return ptr(prof(s)) }).only(kind).showIf(shown)
	}
	var out []fieldDecl
	out = append(out,
		when(path+".not_before", section, "Not before", "Empty: the time of the ceremony.", func(s *script.Script) *time.Time { return &prof(s).NotBefore }).only(kind).showIf(shown),
		when(path+".not_after", section, "Not after", "Refused if after the root's end.", func(s *script.Script) *time.Time { return &prof(s).NotAfter }).only(kind).showIf(shown),
	)
	if !cross {
		out = append(out, number(path+".validity_days", section, "Validity (days)", "Or not_after: counted from not_before, clipped to the root's end.",
			func(s *script.Script) *int { return &prof(s).ValidityDays }).only(kind).showIf(shown))
	}
	out = append(out,
		optNumber(path+".max_path_length", section, "Path length", "0: the CA issues end-entity certificates only; -1: no limit.", func(s *script.Script) **int { return &prof(s).MaxPathLength }).only(kind).showIf(shown),
		check(path+".digital_signature", section, "Key usage", "Add digitalSignature", "Needed by a CA that signs OCSP responses itself.", func(s *script.Script) *bool { return &prof(s).DigitalSignature }).only(kind).showIf(shown),
		l("crl_distribution_points", "CRL distribution points", "URLs, one per line.", func(p *script.CAProfile) *[]string { return &p.CRLDistribution }),
		l("ocsp_servers", "OCSP servers", "URLs, one per line.", func(p *script.CAProfile) *[]string { return &p.OCSPServers }),
		l("issuing_certificate_urls", "Issuing certificate URLs", "URLs, one per line.", func(p *script.CAProfile) *[]string { return &p.IssuingCertURLs }),
		l("policies", "Certificate policies", "OIDs, one per line (2.5.29.32.0 is anyPolicy).", func(p *script.CAProfile) *[]string { return &p.Policies }),
		l("permitted_dns_domains", "Permitted DNS domains", "Name constraints, one per line.", func(p *script.CAProfile) *[]string { return &p.PermittedDNS }),
		l("excluded_dns_domains", "Excluded DNS domains", "Name constraints, one per line.", func(p *script.CAProfile) *[]string { return &p.ExcludedDNS }),
		options(path+".allowed_keys", section, "Allowed subject keys", "The key types accepted.", script.SubjectKeyTypes, func(s *script.Script) *[]string { return &prof(s).AllowedKeys }).only(kind).showIf(shown),
		l("ignore_lints", "Ignored lints", "zlint lint names that do not apply; their findings are still recorded.", func(p *script.CAProfile) *[]string { return &p.IgnoreLints }),
	)
	return out
}

func byokFields() []fieldDecl {
	b := byokOf
	kind := script.BYOKWrap
	separate := func(s *script.Script) bool {
		return s.BYOK != nil && (s.BYOK.PublicKey != nil || s.BYOK.ImportToken != nil)
	}
	mode := pickFunc("byok", secParams, "Parameters", "", []choice{
		{"json", "one file: the JSON of get-parameters-for-import (import-parameters.json)"},
		{"files", "separate files, as the AWS console downloads them"}},
		func(s *script.Script) string {
			if separate(s) || s.BYOK != nil && (s.BYOK.KeyID != "" || !s.BYOK.ParametersValidTo.IsZero()) {
				return "files"
			}
			return "json"
		},
		func(s *script.Script, v string) {
			if v == "files" {
				b(s).PublicKey, b(s).ImportToken = &script.Input{}, &script.Input{}
			} else {
				b(s).Parameters = &script.Input{}
			}
		})
	isJSON := func(s *script.Script) bool { return s.BYOK != nil && s.BYOK.Parameters != nil }
	isFiles := func(s *script.Script) bool { return !isJSON(s) }
	return []fieldDecl{
		mode.only(kind),
		optFile("byok.parameters", secParams, "Parameters file", "Key ARN, wrapping key and expiry are read from it; key spec and algorithm are filled in when it names them.", inputParameters, true,
			func(s *script.Script) **script.Input { return &b(s).Parameters }).only(kind).showIf(isJSON),
		optFile("byok.public_key", secParams, "Wrapping public key", "WrappingPublicKey.bin (DER, PEM or base64).", inputPlain, true,
			func(s *script.Script) **script.Input { return &b(s).PublicKey }).only(kind).showIf(isFiles),
		optFile("byok.import_token", secParams, "Import token", "ImportToken.bin.", inputPlain, true,
			func(s *script.Script) **script.Input { return &b(s).ImportToken }).only(kind).showIf(isFiles),
		text("byok.key_id", secParams, "KMS key", "Key ID or ARN the parameters were issued for.", func(s *script.Script) *string { return &b(s).KeyID }).only(kind).showIf(isFiles),
		when("byok.parameters_valid_to", secParams, "Parameters valid to", "ParametersValidTo as AWS printed it.", func(s *script.Script) *time.Time { return &b(s).ParametersValidTo }).only(kind).showIf(isFiles),
		pick("byok.key_spec", secParams, "KMS key spec", "", plainChoices(byokSpecNames()...), func(s *script.Script) *string { return &b(s).KeySpec }).only(kind),
		pick("byok.wrapping_algorithm", secParams, "Wrapping algorithm", "The algorithm the parameters were requested for.", plainChoices(byokAlgorithmNames()...), func(s *script.Script) *string { return &b(s).WrappingAlgorithm }).only(kind),

		pick("byok.key.source", secMaterial, "Material", "", []choice{
			{script.KeyGenerate, "generate — a new key in the token, made for this import"},
			{script.KeyExisting, "existing — a token key named by URI (made extractable)"}},
			func(s *script.Script) *string { return &b(s).Key.Source }).only(kind),
		text("byok.key.label", secMaterial, "New key label", "", func(s *script.Script) *string { return &b(s).Key.Label }).only(kind).
			showIf(func(s *script.Script) bool { return s.BYOK != nil && s.BYOK.Key.Source != script.KeyExisting }),
		text("byok.key.uri", secMaterial, "Existing key", "pkcs11:object=…;type=secret-key (the token is the one above).", func(s *script.Script) *string { return &b(s).Key.URI }).only(kind).
			showIf(func(s *script.Script) bool { return s.BYOK != nil && s.BYOK.Key.Source == script.KeyExisting }),
		yesNo("byok.keep_in_token", secMaterial, "The token's copy", "Must be decided before the ceremony.",
			"keep it — your own escrow copy", "destroy it once the files are written", func(s *script.Script) **bool { return &b(s).KeepInToken }).only(kind),
		check("byok.allow_host_steps", secMaterial, "Host memory", "Allow steps in host memory",
			"Not ticked: a wrap the token cannot do entirely itself is refused. The plan is shown before anything runs either way.",
			func(s *script.Script) *bool { return &b(s).AllowHostSteps }).only(kind),

		pick("byok.expiration.model", secImport, "Key material expires", "", []choice{
			{kmsimport.KeyMaterialExpires, "KEY_MATERIAL_EXPIRES — on a date (at most 365 days ahead)"},
			{kmsimport.KeyMaterialDoesNotExpire, "KEY_MATERIAL_DOES_NOT_EXPIRE"}},
			func(s *script.Script) *string { return &b(s).Expiration.Model }).only(kind),
		when("byok.expiration.valid_to", secImport, "Expires at", "Or a number of days below.", func(s *script.Script) *time.Time { return &b(s).Expiration.ValidTo }).only(kind).showIf(expires),
		number("byok.expiration.valid_for_days", secImport, "Expires after (days)", "Counted from the ceremony, 1 to 365.", func(s *script.Script) *int { return &b(s).Expiration.ValidForDays }).only(kind).showIf(expires),
		pick("byok.import_type", secImport, "Import", "", []choice{
			{"", "first import of this key's material"},
			{kmsimport.ImportTypeNew, "NEW_KEY_MATERIAL — rotation by re-import (SYMMETRIC_DEFAULT)"},
			{kmsimport.ImportTypeExisting, "EXISTING_KEY_MATERIAL — the same material again"}},
			func(s *script.Script) *string { return &b(s).ImportType }).only(kind),
	}
}

func expires(s *script.Script) bool {
	return s.BYOK != nil && s.BYOK.Expiration.Model != kmsimport.KeyMaterialDoesNotExpire
}

func participants() fieldDecl {
	return fieldDecl{path: "participants", section: secPeople, label: "Participants",
		hint:   "Everyone present by name: an administrator, at least one witness, the custodians, auditors.",
		covers: []string{"participants[].name", "participants[].role"},
		make:   func(c *formCtx) editor { return newParticipantsEditor(c) }}
}

func revoked() fieldDecl {
	return fieldDecl{path: "signing.crl.revoked", section: secCRL, label: "Revoked certificates",
		covers: []string{"signing.crl.revoked[].serial", "signing.crl.revoked[].revoked_at", "signing.crl.revoked[].reason"},
		make:   func(c *formCtx) editor { return newRevocationsEditor(c) }}
}

func custodians() fieldDecl {
	return fieldDecl{path: "quorum.custodians", section: secQuorum, label: "Custodians",
		hint: "One name per line, in share order (the first holds share 1). While not edited it follows the participants with role custodian. With a quorum record: optional, checked against it.",
		make: func(c *formCtx) editor {
			return &custodiansEditor{listEditor: listEditor{e: newScriptEntry(c, true, "one per line"), ptr: func(s *script.Script) *[]string { return &s.Quorum.Custodians }}}
		}}
}
