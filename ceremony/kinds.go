package ceremony

import "github.com/keyceremony/keyceremony/ceremony/script"

// planFor expands a script into its ordered steps. Each kind of ceremony is
// spelled out here as one sequence, from the preflight steps every ceremony
// starts with to the closing step; each step's constructor is in the file
// named after its part of the ceremony:
//
//	preflight.go      begin, air-gap, clock, token, free-space, sign-in
//	issue.go          issue-shares, issue-recovery-shares
//	quorumsteps.go    unlock, enrol-token
//	recovery.go       unlock-recovery
//	rootkey.go        generate-key
//	backup.go         backup-key
//	restore.go        inputs (backup, restore), restore-key, prove-key
//	signinginputs.go  inputs (ca-signing, crl), issuer-key
//	signing.go        lint-<artefact>, sign-<artefact>, for the artefacts of artefacts.go
//	byokinputs.go     inputs (byok-wrap)
//	byokwrap.go       wrap-plan, byok-key, wrap, token-copy, handover
//	anchors.go        anchor, seal (the token signs the transcript)
//	finish.go         finish
func planFor(s *script.Script) []*step {
	plan := preflightSteps(s)
	add := func(steps ...*step) { plan = append(plan, steps...) }
	switch s.Kind {
	case script.RootGeneration:
		add(issueSharesStep(),
			unlockStep("verify the new shares and enrol the token"),
			enrolStep(s),
			generateKeyStep(s),
			anchorStep())
		switch {
		case s.LegacyBackup():
			add(legacyBackupStep())
		case s.Key.Backup:
			add(issueRecoverySharesStep(),
				unlockRecoveryStep("verify the recovery shares and back up the key"),
				backupKeyStep())
		}
		add(lintStep(rootCertificate), signStep(rootCertificate))

	case script.KeyBackup:
		add(inputsStep(s),
			unlockStep("log in to back up the key"),
			anchorStep(),
			unlockRecoveryStep("open the backup KEK"),
			backupKeyStep())

	case script.KeyRestore:
		add(inputsStep(s),
			unlockStep("enrol the token and restore the key"),
			enrolStep(s))
		if s.Recovery != nil {
			add(unlockRecoveryStep("open the backup KEK"))
		}
		add(restoreKeyStep(),
			anchorStep(),
			proveKeyStep())

	case script.CASigning, script.CRLIssuance:
		g := s.Signing
		add(signingInputsStep(s),
			unlockStep("unlock the root key"),
			issuerKeyStep(),
			anchorStep())
		if g.Subordinate != nil {
			add(lintStep(subordinateCertificate), signStep(subordinateCertificate))
		}
		if g.CrossCertificate != nil {
			add(lintStep(crossCertificate), signStep(crossCertificate))
		}
		if g.CRL != nil {
			add(lintStep(rootCRL), signStep(rootCRL))
		}

	case script.BYOKWrap:
		// The plan comes before the key: a wrap the script does not allow is
		// refused before anything is generated on the token.
		add(byokInputsStep(),
			unlockStep("unlock the token for the key material"),
			wrapPlanStep(),
			byokKeyStep(s),
			wrapStep(),
			tokenCopyStep(s),
			handoverStep())
	}
	add(finishStep())
	if signsTranscript(s.Kind) {
		add(sealStep())
	}
	return plan
}
