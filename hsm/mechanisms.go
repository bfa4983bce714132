package hsm

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

// mechanismNames covers the mechanisms a key ceremony cares about; others
// print as hex.
var mechanismNames = map[uint]string{
	pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN:  "CKM_RSA_PKCS_KEY_PAIR_GEN",
	pkcs11.CKM_RSA_PKCS:               "CKM_RSA_PKCS",
	pkcs11.CKM_RSA_X_509:              "CKM_RSA_X_509",
	pkcs11.CKM_RSA_PKCS_OAEP:          "CKM_RSA_PKCS_OAEP",
	pkcs11.CKM_RSA_PKCS_PSS:           "CKM_RSA_PKCS_PSS",
	pkcs11.CKM_SHA1_RSA_PKCS:          "CKM_SHA1_RSA_PKCS",
	pkcs11.CKM_SHA256_RSA_PKCS:        "CKM_SHA256_RSA_PKCS",
	pkcs11.CKM_SHA384_RSA_PKCS:        "CKM_SHA384_RSA_PKCS",
	pkcs11.CKM_SHA512_RSA_PKCS:        "CKM_SHA512_RSA_PKCS",
	pkcs11.CKM_SHA256_RSA_PKCS_PSS:    "CKM_SHA256_RSA_PKCS_PSS",
	pkcs11.CKM_SHA384_RSA_PKCS_PSS:    "CKM_SHA384_RSA_PKCS_PSS",
	pkcs11.CKM_SHA512_RSA_PKCS_PSS:    "CKM_SHA512_RSA_PKCS_PSS",
	pkcs11.CKM_RSA_AES_KEY_WRAP:       "CKM_RSA_AES_KEY_WRAP",
	pkcs11.CKM_EC_KEY_PAIR_GEN:        "CKM_EC_KEY_PAIR_GEN",
	pkcs11.CKM_ECDSA:                  "CKM_ECDSA",
	pkcs11.CKM_ECDSA_SHA256:           "CKM_ECDSA_SHA256",
	pkcs11.CKM_ECDSA_SHA384:           "CKM_ECDSA_SHA384",
	pkcs11.CKM_ECDSA_SHA512:           "CKM_ECDSA_SHA512",
	pkcs11.CKM_ECDH1_DERIVE:           "CKM_ECDH1_DERIVE",
	ckmECEdwardsKeyPairGen:            "CKM_EC_EDWARDS_KEY_PAIR_GEN",
	ckmEdDSA:                          "CKM_EDDSA",
	pkcs11.CKM_AES_KEY_GEN:            "CKM_AES_KEY_GEN",
	pkcs11.CKM_AES_ECB:                "CKM_AES_ECB",
	pkcs11.CKM_AES_CBC:                "CKM_AES_CBC",
	pkcs11.CKM_AES_CBC_PAD:            "CKM_AES_CBC_PAD",
	pkcs11.CKM_AES_GCM:                "CKM_AES_GCM",
	pkcs11.CKM_AES_CMAC:               "CKM_AES_CMAC",
	ckmAESKeyWrap:                     "CKM_AES_KEY_WRAP",
	ckmAESKeyWrapPad:                  "CKM_AES_KEY_WRAP_PAD",
	pkcs11.CKM_GENERIC_SECRET_KEY_GEN: "CKM_GENERIC_SECRET_KEY_GEN",
	pkcs11.CKM_SHA_1:                  "CKM_SHA_1",
	pkcs11.CKM_SHA256:                 "CKM_SHA256",
	pkcs11.CKM_SHA384:                 "CKM_SHA384",
	pkcs11.CKM_SHA512:                 "CKM_SHA512",
	pkcs11.CKM_SHA_1_HMAC:             "CKM_SHA_1_HMAC",
	pkcs11.CKM_SHA224_HMAC:            "CKM_SHA224_HMAC",
	pkcs11.CKM_SHA256_HMAC:            "CKM_SHA256_HMAC",
	pkcs11.CKM_SHA384_HMAC:            "CKM_SHA384_HMAC",
	pkcs11.CKM_SHA512_HMAC:            "CKM_SHA512_HMAC",
	pkcs11.CKM_DES3_KEY_GEN:           "CKM_DES3_KEY_GEN",
	pkcs11.CKM_MD5:                    "CKM_MD5",
}

// MechanismName names a CKM_ value, or prints it in hex.
func MechanismName(m uint) string {
	if n, ok := mechanismNames[m]; ok {
		return n
	}
	return fmt.Sprintf("CKM_0x%08X", m)
}
