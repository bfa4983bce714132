package online

import (
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

func requestID(md middleware.Metadata) (string, bool) {
	return awsmiddleware.GetRequestIDMetadata(md)
}
