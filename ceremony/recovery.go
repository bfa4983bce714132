package ceremony

import (
	"context"

	"github.com/keyceremony/keyceremony/ceremony/transcript"
)

// The recovery quorum's unlock. Its secret derives the backup KEK and
// nothing else: it does not log in, and the transcript's MAC stays under the
// quorum that unlocks the token. It is wiped right after the backup or the
// restore that needed it.

func unlockRecoveryStep(purpose string) *step {
	return &step{
		id: "unlock-recovery", title: "Recovery quorum unlocked",
		do:     "Recovery custodians present their recovery shares one at a time until the recovery quorum's threshold is reached.",
		check:  "Each share is checked on entry against the recovery quorum record.",
		record: "Which recovery custodians presented shares, and every refused share with the reason; never a share.",
		run: func(ctx context.Context, r *stepRun) error {
			return r.e.unlockRecovery(ctx, r, purpose)
		},
	}
}

func (e *Engine) unlockRecovery(ctx context.Context, r *stepRun, purpose string) error {
	secret, err := e.collect(ctx, r, e.recoveryRecord, purpose)
	if err != nil {
		return err
	}
	e.wipeRecovery()
	e.recoverySecret = secret
	return nil
}

// ensureRecovery makes the recovery quorum's secret available, asking the
// recovery custodians again (recorded as its own entry) when a resumed
// ceremony no longer holds it.
func (e *Engine) ensureRecovery(ctx context.Context, purpose string) error {
	if e.recoverySecret != nil {
		return nil
	}
	r := &stepRun{e: e, st: &step{id: "unlock-recovery"}, entry: transcript.Entry{Step: "unlock-recovery", Action: "recovery quorum unlocked again (" + purpose + ")", Rehearsal: e.opt.Rehearse}}
	if err := e.p.Inform(ctx, Notice{Step: "unlock-recovery", Title: "The recovery quorum is needed again",
		Warning: "This resumed ceremony no longer holds the recovery quorum's secret: recovery custodians present their recovery shares to " + purpose + "."}); err != nil {
		return err
	}
	if err := e.unlockRecovery(ctx, r, purpose); err != nil {
		return err
	}
	_, err := e.tw.Append(r.entry)
	return err
}

func (e *Engine) wipeRecovery() {
	e.recoverySecret.Wipe()
	e.recoverySecret = nil
}
