package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/online"
)

// The connected side. Every command here opens a network connection to AWS,
// and only because a person typed it.
func init() {
	Register(&Command{Name: "aws", Summary: "connected-side steps: BYOK prepare/import with AWS KMS, Private CA CSR and certificate, KMS key inventory", Run: func(ctx context.Context, env *Env, args []string) error {
		return subcommand(ctx, env, "aws", args, map[string]func(context.Context, *Env, []string) error{
			"byok": func(ctx context.Context, env *Env, args []string) error {
				return subcommand(ctx, env, "aws byok", args, map[string]func(context.Context, *Env, []string) error{
					"prepare": awsBYOKPrepare,
					"import":  awsBYOKImport,
				})
			},
			"inventory": awsInventory,
			"pca": func(ctx context.Context, env *Env, args []string) error {
				return subcommand(ctx, env, "aws pca", args, map[string]func(context.Context, *Env, []string) error{
					"get-csr":     awsPCAGetCSR,
					"import-cert": awsPCAImportCert,
				})
			},
		})
	}})
}

func connectionFlags(fs interface {
	String(string, string, string) *string
}) func() online.Connection {
	profile := fs.String("profile", "", "AWS profile (default: the standard credential chain)")
	region := fs.String("region", "", "AWS region (default: from the profile or AWS_REGION)")
	endpoint := fs.String("endpoint-url", "", "override the service endpoint (VPC endpoints, tests)")
	return func() online.Connection {
		return online.Connection{Profile: *profile, Region: *region, Endpoint: *endpoint}
	}
}

func awsBYOKPrepare(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "aws byok prepare")
	conn := connectionFlags(fs)
	keyID := fs.String("key-id", "", "existing KMS key (origin EXTERNAL); empty: create one")
	desc := fs.String("description", "", "description of a new key")
	spec := fs.String("key-spec", "SYMMETRIC_DEFAULT", "KMS key spec")
	alg := fs.String("wrapping-algorithm", "RSA_AES_KEY_WRAP_SHA_256", "wrapping algorithm")
	wks := fs.String("wrapping-key-spec", "RSA_4096", "wrapping key spec")
	out := fs.String("out", ".", "directory for import-parameters.json (carry it to the ceremony)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := online.NewKMS(ctx, conn())
	if err != nil {
		return err
	}
	b, err := k.PrepareBYOK(ctx, online.PrepareRequest{KeyID: *keyID, Description: *desc, KeySpec: kmsimport.KeySpec(*spec),
		Algorithm: kmsimport.Algorithm(*alg), WrappingKeySpec: kmsimport.WrappingKeySpec(*wks)}, *out)
	if err != nil {
		return err
	}
	verb := "Using"
	if b.Created {
		verb = "Created"
	}
	fmt.Fprintf(env.Stdout, "%s KMS key %s (%s, origin EXTERNAL).\nWrote %s/%s: carry it to the ceremony.\nThe parameters expire at %s (in %s): run the byok-wrap ceremony and the import before then.\n",
		verb, b.KeyARN, b.KeySpec, *out, online.ParametersFile, b.ParametersValidTo.Format(time.RFC3339), time.Until(b.ParametersValidTo).Round(time.Minute))
	return nil
}

func awsBYOKImport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "aws byok import DIR")
	conn := connectionFlags(fs)
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keyceremony aws byok import [--profile P --region R] DIR (the byok-wrap ceremony's output directory)")
	}
	k, err := online.NewKMS(ctx, conn())
	if err != nil {
		return err
	}
	res, err := k.ImportBYOK(ctx, fs.Arg(0), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Imported into %s: key state %s, key material %s.\nEvidence written to %s/%s; add it to the ceremony's records.\n",
		res.KeyARN, res.KeyState, res.KeyMaterialID, fs.Arg(0), online.ImportResultFile)
	if tr := res.Transcript; tr != nil {
		fmt.Fprintf(env.Stdout, "The files are the ones the ceremony transcript %s records (entry %d); its final hash %s.\n", tr.Path, tr.WrapEntry, tr.FinalHash)
	} else {
		fmt.Fprintln(env.Stdout, "WARNING: no ceremony transcript beside the files, so they were checked against the manifest only: compare their SHA-256 with the ceremony's transcript.")
	}
	return nil
}

func awsPCAGetCSR(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "aws pca get-csr")
	conn := connectionFlags(fs)
	arn := fs.String("ca-arn", "", "the subordinate CA's ARN (required)")
	out := fs.String("o", "", "file for the CSR (PEM; must not exist) (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *arn == "" || *out == "" || fs.NArg() != 0 {
		return usagef("keyceremony aws pca get-csr [--profile P --region R] --ca-arn ARN -o FILE")
	}
	p, err := online.NewPCA(ctx, conn())
	if err != nil {
		return err
	}
	csr, err := p.GetCSR(ctx, *arn, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Wrote the CSR of %s (subject %s, %s key) to %s: carry it to the ca-signing ceremony.\n",
		*arn, csr.Subject, certprofile.KeyType(csr.PublicKey), *out)
	return nil
}

func awsPCAImportCert(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "aws pca import-cert DIR")
	conn := connectionFlags(fs)
	arn := fs.String("ca-arn", "", "the subordinate CA's ARN (required)")
	if err := parseFlags(fs, reorder(fs, args)); err != nil {
		return err
	}
	if *arn == "" || fs.NArg() != 1 {
		return usagef("keyceremony aws pca import-cert [--profile P --region R] --ca-arn ARN DIR (the ca-signing ceremony's output directory)")
	}
	p, err := online.NewPCA(ctx, conn())
	if err != nil {
		return err
	}
	res, err := p.ImportCertificate(ctx, *arn, fs.Arg(0), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Installed the certificate (SHA-256 %s) into %s: status %s, valid %s to %s.\nEvidence written to %s/%s; add it to the ceremony's records.\n",
		res.CertificateSHA256, res.CertificateAuthorityArn, res.Status, res.NotBefore.Format(time.RFC3339), res.NotAfter.Format(time.RFC3339), fs.Arg(0), online.PCAImportResultFile)
	return nil
}
