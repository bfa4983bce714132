package rotation

// A few facts the rotation report needs are only in the original records:
// the key spec, origin and manager in CreateKey, rotationPeriodInDays in
// EnableKeyRotation, importType and expirationModel in ImportKeyMaterial,
// the key material made current by a RotateKey. The ingest parses them
// (cloudtrail.Detail) into the event_details table (schema v4), which the
// lifecycle query joins: the report no longer decompresses evidence.

// detail is what an event's record states.
type detail struct {
	KeySpec, Origin, KeyManager, CustomKeyStore, Description string
	RotationPeriodDays                                       int
	ImportType, ExpirationModel                              string
	KeyMaterialID                                            string
}
