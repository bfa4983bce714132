package awsapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestExplain(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User x is not authorized"}
	other := &smithy.GenericAPIError{Code: "KMSInternalException", Message: "oops"}
	plain := errors.New("connection refused")
	hints := map[string]string{"AccessDeniedException": "the credentials lack kms:ListKeys"}
	tests := []struct {
		err  error
		want string
	}{
		{denied, "list the keys: the credentials lack kms:ListKeys (AccessDeniedException: User x is not authorized)"},
		{fmt.Errorf("operation error: %w", denied), "list the keys: the credentials lack kms:ListKeys (AccessDeniedException: User x is not authorized)"},
		{other, "list the keys: api error KMSInternalException: oops"},
		{plain, "list the keys: connection refused"},
	}
	for _, tc := range tests {
		got := Explain("list the keys", tc.err, hints)
		if got.Error() != tc.want {
			t.Errorf("Explain(%v) = %q, want %q", tc.err, got, tc.want)
		}
		// Without a hint the original error stays reachable.
		if !strings.Contains(tc.want, "AccessDeniedException") && !errors.Is(got, tc.err) {
			t.Errorf("Explain(%v) does not wrap it", tc.err)
		}
	}
}

func TestEndpoint(t *testing.T) {
	if Endpoint("") != nil {
		t.Error("an empty override must leave the service's endpoint")
	}
	if e := Endpoint("https://127.0.0.1:4443"); e == nil || *e != "https://127.0.0.1:4443" {
		t.Errorf("Endpoint = %v", e)
	}
}
