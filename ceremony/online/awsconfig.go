// Package online holds the steps that run on the connected workstation
// before and after an air-gapped ceremony, through aws-sdk-go-v2: preparing
// and completing a BYOK import into AWS KMS, fetching a subordinate CA's CSR
// from AWS Private CA and installing its certificate, and archiving
// evidence in S3 with Object Lock. Nothing here runs unless a person starts
// it. The audit side's online packages are the only others that open a
// network connection, each also only when a person starts it:
// audit/awsfetch (CloudTrail LookupEvents), audit/athena (Athena queries
// over an organisation's trail), audit/s3trail (a trail's log files from
// S3) and audit/kmsinventory (the KMS key inventory).
package online

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Connection says how to reach AWS: the standard credential chain with an
// optional profile and region. Endpoint and RootCAs exist for tests against
// local servers (and for VPC endpoints behind a private CA).
type Connection struct {
	Profile  string
	Region   string
	Endpoint string
	RootCAs  *x509.CertPool
}

// Load builds the SDK configuration. TLS below 1.2 is refused.
func (c Connection) Load(ctx context.Context) (aws.Config, error) {
	client := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.MinVersion = tls.VersionTLS12
		if c.RootCAs != nil {
			tr.TLSClientConfig.RootCAs = c.RootCAs
		}
	})
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(client)}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration (profile %q): %w", c.Profile, err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region: pass --region or set AWS_REGION")
	}
	return cfg, nil
}
