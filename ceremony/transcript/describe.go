package transcript

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/keyceremony/keyceremony/ceremony/words"
)

// UnattendedDetail is the first entry's detail that says an answers file
// answered the prompts (the engine writes it, a verifier reads it).
const UnattendedDetail = "unattended"

// Describe writes what a verifier needs to read of a verified transcript:
// who ran what with which binary, the anchors and what they are anchored
// to, and the final hash to compare with the signed paper (or why there is
// none). dir is the transcript's directory (where a root certificate is
// looked for); x is what the verifier brought. It is the text of
// `keyceremony ceremony verify`, and what the Audit page shows when it
// opens a transcript again.
func (rep *Report) Describe(w io.Writer, dir string, x Expect) {
	first, last := rep.Entries[0], rep.Last()
	fmt.Fprintf(w, "Chain OK: %d entries chained, %d output files match.\n", len(rep.Entries), rep.Files)
	fmt.Fprintf(w, "Ceremony   %s (%s)\nScript     SHA-256 %s\n", first.Detail("ceremony id"), first.Detail("kind"), first.Detail("script sha256"))
	if exe := first.Detail("binary sha256"); exe != "" {
		fmt.Fprintf(w, "Binary     keyceremony %s (commit %s)\n           SHA-256 %s\n           %s\n",
			first.Detail("binary version"), first.Detail("binary commit"), exe, first.Detail("binary words"))
		fmt.Fprintln(w, "           compare it with the SHA256SUMS published for that release")
	} else {
		fmt.Fprintln(w, "Binary     not recorded (transcript written before Key Ceremony recorded its own hash)")
	}
	if first.Rehearsal {
		fmt.Fprintln(w, "REHEARSAL: this transcript comes from a rehearsal on a throwaway token.")
	}
	if u := first.Detail(UnattendedDetail); u != "" {
		fmt.Fprintf(w, "UNATTENDED: %s\n", u)
	}
	rep.describeAnchors(w, dir, x)
	if final, ok := rep.Final(); ok {
		fmt.Fprintf(w, "Complete   the transcript PDF is entry %d\n", last.Seq)
		fmt.Fprintf(w, "Final hash (entry %d, printed on the transcript PDF and written on the signed paper)\n  %s\n  %s\n", final.Seq, final.Hash, words.String(final.HashBytes()))
		if x.FinalHash == nil {
			fmt.Fprintln(w, "  compare it with the paper: keyceremony ceremony verify TRANSCRIPT --expect 'WORDS FROM THE PAPER'")
		}
		return
	}
	fmt.Fprintf(w, "INCOMPLETE: the transcript ends at entry %d (%s, %s); missing: %s\n", last.Seq, last.Step, last.Result, strings.Join(rep.Missing(), ", "))
	fmt.Fprintf(w, "Last entry hash (entry %d): NOT a final hash; no transcript PDF printed it and no paper carries it\n  %s\n", last.Seq, last.Hash)
	fmt.Fprintln(w, "  If this is the medium of an interrupted ceremony, run its script again to resume; if it should be complete, this copy was cut short.")
}

func (rep *Report) describeAnchors(w io.Writer, dir string, x Expect) {
	defer rep.describePaper(w, x)
	if rep.Plan == nil {
		fmt.Fprintln(w, "Anchors    NONE: written before Key Ceremony anchored its transcripts (or stripped of its anchors);")
		fmt.Fprintln(w, "           only the final hash on the signed paper (--expect) vouches for it")
		return
	}
	if len(rep.Signatures) > 0 {
		var at []string
		for _, s := range rep.Signatures {
			at = append(at, fmt.Sprintf("%d (%s)", s.Seq, s.Step))
		}
		key := rep.Signatures[0].Key
		ks := sha256.Sum256(key)
		fmt.Fprintf(w, "Anchors    token signature: entries %s, each over the hash before it, all verified\n", strings.Join(at, ", "))
		fmt.Fprintf(w, "           signing key SPKI SHA-256 %x\n           %s\n", ks, words.String(ks[:]))
		switch name, cert := rep.RootCertificate(dir); {
		case x.Root != nil:
			fmt.Fprintf(w, "           checked against the root certificate you gave (%s)\n", x.Root.Subject)
		case cert != nil:
			cs := sha256.Sum256(cert.Raw)
			fmt.Fprintf(w, "           the key of %s (%s), certificate SHA-256 %x\n           %s\n", name, cert.Subject, cs, words.String(cs[:]))
			fmt.Fprintln(w, "           compare it with the root fingerprint published or on the root ceremony's paper, or give --root")
		default:
			fmt.Fprintln(w, "           compare it with the root certificate's key, or give --root")
		}
	} else if len(rep.Plan.Signed) > 0 {
		fmt.Fprintln(w, "Anchors    token signature: none yet (the ceremony stopped before its key signed)")
	} else {
		fmt.Fprintf(w, "Anchors    token signature: none (%s)\n", rep.Plan.Key)
	}
	if rep.MACFrom != 0 {
		fmt.Fprintf(w, "           quorum MAC: entries %d-%d (the custodians check it, e.g. when a ceremony resumes)\n", rep.MACFrom, rep.Last().Seq)
	}
}

// describePaper says whether the final hash is the one written on the paper.
func (rep *Report) describePaper(w io.Writer, x Expect) {
	if x.FinalHash != nil {
		if f, ok := rep.Final(); ok && f.Hash == hex.EncodeToString(x.FinalHash) {
			fmt.Fprintln(w, "           paper: the final hash is the one written on the signed paper")
		} else {
			fmt.Fprintln(w, "           paper: the final hash is NOT the one written on the signed paper")
		}
	}
}
