// Package awsapi holds what every package that calls AWS shares, whichever
// side of the application it serves (the audit side's audit/awsfetch,
// audit/athena, audit/s3trail, audit/kmsinventory; the ceremony side's
// ceremony/online): turning an AWS error into what the operator should do,
// and the endpoint override of a client. It makes no call itself.
package awsapi

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// Explain wraps err from the AWS call described by what. When err is an
// AWS API error whose code has a hint, the hint comes first, then the code
// and AWS's message: "list the keys (ListKeys): the credentials lack
// permission (...) (AccessDeniedException: ...)". Any other error is
// wrapped as it is.
func Explain(what string, err error, hints map[string]string) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s: %w", what, err)
	}
	hint := hints[ae.ErrorCode()]
	if hint == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %s (%s: %s)", what, hint, ae.ErrorCode(), ae.ErrorMessage())
}

// Endpoint is a client's BaseEndpoint for an override URL: nil (the
// service's own endpoint) when url is empty. Overrides serve VPC endpoints
// and the tests' local servers.
func Endpoint(url string) *string {
	if url == "" {
		return nil
	}
	return aws.String(url)
}
