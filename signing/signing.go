// Package signing implements paygate's open-API cryptography, compatible with
// the WeChat Pay APIv3 scheme so that merchants can use the official APIv3
// SDKs' core clients:
//
//   - requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",
//     nonce_str="..",timestamp="..",serial_no="..",signature=".."`, an
//     RSASSA-PKCS1-v1_5 SHA-256 signature over
//     "METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n" with the merchant's key;
//   - responses carry Wechatpay-Timestamp/-Nonce/-Signature/-Serial, signed
//     over "TIMESTAMP\nNONCE\nBODY\n" with the platform's key;
//   - notifications carry their resource encrypted with AEAD_AES_256_GCM
//     under the merchant's 32-byte APIv3 key.
//
// The package is pure: no I/O, no clock (callers pass the time).
package signing

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strconv"
	"strings"
	"time"

	"paygate"
)

// Scheme is the Authorization scheme paygate accepts.
const Scheme = "WECHATPAY2-SHA256-RSA2048"

// Response and notification header names.
const (
	HeaderTimestamp = "Wechatpay-Timestamp"
	HeaderNonce     = "Wechatpay-Nonce"
	HeaderSignature = "Wechatpay-Signature"
	HeaderSerial    = "Wechatpay-Serial"
)

// Window is how far a request's timestamp may be from the server's clock.
const Window = 300 * time.Second

// probePrefix marks WeChat Pay's "signature probe" requests, which must fail.
const probePrefix = "WECHATPAY/SIGNTEST/"

// Authorization is a parsed Authorization header.
type Authorization struct {
	MchID     string
	Nonce     string
	Timestamp int64
	SerialNo  string
	Signature string // base64
}

// maxHeader bounds the Authorization header; an RSA-2048 signature is 344
// base64 characters.
const maxHeader = 2048

func unauth(format string, args ...any) error {
	return paygate.E(paygate.CodeUnauthenticated, format, args...)
}

// ParseAuthorization parses an Authorization header value. Parameters may
// come in any order, each exactly once; all five are required; values are
// double-quoted. Errors: CodeUnauthenticated with a message naming what is
// wrong (never echoing the signature).
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	if len(h) > maxHeader {
		return a, unauth("Authorization header is too long")
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || scheme != Scheme {
		return a, unauth("Authorization scheme must be %s", Scheme)
	}
	seen := map[string]bool{}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		key = strings.TrimSpace(key)
		if len(key) > 32 {
			return a, unauth("Authorization parameter name is too long")
		}
		if !ok || key == "" || !strings.HasPrefix(after, `"`) {
			return a, unauth("Authorization parameters must be key=\"value\"")
		}
		end := strings.IndexByte(after[1:], '"')
		if end < 0 {
			return a, unauth("Authorization parameter %q is not closed", key)
		}
		val := after[1 : 1+end]
		rest = strings.TrimSpace(after[2+end:])
		if rest != "" {
			if rest[0] != ',' {
				return a, unauth("Authorization parameters must be separated by commas")
			}
			rest = strings.TrimSpace(rest[1:])
			if rest == "" {
				return a, unauth("Authorization header ends with a comma")
			}
		}
		if seen[key] {
			return a, unauth("Authorization parameter %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "mchid":
			a.MchID = val
		case "nonce_str":
			a.Nonce = val
		case "timestamp":
			ts, err := strconv.ParseInt(val, 10, 64)
			if err != nil || ts <= 0 || len(val) > 12 {
				return a, unauth("Authorization timestamp must be Unix seconds")
			}
			a.Timestamp = ts
		case "serial_no":
			a.SerialNo = val
		case "signature":
			a.Signature = val
		default:
			return a, unauth("unknown Authorization parameter %q", key)
		}
	}
	for _, k := range []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"} {
		if !seen[k] {
			return a, unauth("Authorization parameter %s is missing", k)
		}
	}
	switch {
	case a.MchID == "" || len(a.MchID) > 64:
		return a, unauth("mchid must be 1 to 64 characters")
	case a.Nonce == "" || len(a.Nonce) > 64:
		return a, unauth("nonce_str must be 1 to 64 characters")
	case a.SerialNo == "" || len(a.SerialNo) > 64:
		return a, unauth("serial_no must be 1 to 64 characters")
	case strings.HasPrefix(a.Signature, probePrefix):
		return a, unauth("signature probe requests are not accepted")
	case a.Signature == "":
		return a, unauth("signature is empty")
	}
	return a, nil
}

// String formats a as an Authorization header value.
func (a Authorization) String() string {
	return Scheme + ` mchid="` + a.MchID + `",nonce_str="` + a.Nonce + `",timestamp="` +
		strconv.FormatInt(a.Timestamp, 10) + `",serial_no="` + a.SerialNo + `",signature="` + a.Signature + `"`
}

// RequestMessage is the string a request signature covers. pathAndQuery is
// the request URI exactly as sent (path plus "?query" when present).
func RequestMessage(method, pathAndQuery string, timestamp int64, nonce string, body []byte) []byte {
	var b strings.Builder
	b.Grow(len(method) + len(pathAndQuery) + len(nonce) + len(body) + 24)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(pathAndQuery)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(timestamp, 10))
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte('\n')
	return []byte(b.String())
}

// ResponseMessage is the string a response or notification signature covers.
func ResponseMessage(timestamp int64, nonce string, body []byte) []byte {
	return []byte(strconv.FormatInt(timestamp, 10) + "\n" + nonce + "\n" + string(body) + "\n")
}

// CheckTimestamp reports whether ts (Unix seconds) is within Window of now.
// Errors: CodeUnauthenticated.
func CheckTimestamp(ts int64, now time.Time) error {
	d := now.Unix() - ts
	if d > int64(Window/time.Second) || d < -int64(Window/time.Second) {
		return unauth("timestamp is more than %d seconds from the server's clock", int64(Window/time.Second))
	}
	return nil
}

// Sign returns the base64 RSASSA-PKCS1-v1_5 SHA-256 signature of msg.
func Sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	h := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", paygate.Internal(err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a base64 signature of msg. Errors: CodeUnauthenticated.
func Verify(key *rsa.PublicKey, msg []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return unauth("signature is not base64")
	}
	h := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig); err != nil {
		return unauth("signature does not verify")
	}
	return nil
}

// NewNonce returns a random 32-character nonce.
func NewNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// GenerateKey returns a new RSA-2048 key.
func GenerateKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

// SerialNo derives a key's serial number: the upper-case hex of the first 20
// bytes of the SHA-256 of its public key (DER), stable for the key.
func SerialNo(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(h[:20]))
}

// PrivateKeyPEM encodes a private key as PKCS #8 PEM.
func PrivateKeyPEM(key *rsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PublicKeyPEM encodes a public key as PKIX PEM.
func PublicKeyPEM(pub *rsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePrivateKeyPEM decodes a PKCS #8 or PKCS #1 RSA private key.
// Errors: CodeInvalidArgument.
func ParsePrivateKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "private key is not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, paygate.E(paygate.CodeInvalidArgument, "private key is not RSA")
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "private key is not a PKCS #8 or PKCS #1 RSA key")
	}
	return k, nil
}

// ParsePublicKeyPEM decodes an RSA public key (PKIX, PKCS #1 or inside an
// X.509 certificate) of at least 2048 bits. Errors: CodeInvalidArgument.
func ParsePublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "public key is not PEM")
	}
	var pub any
	var err error
	switch blk.Type {
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
			pub = c.PublicKey
		}
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	default:
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	}
	if err != nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "public key does not parse")
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, paygate.E(paygate.CodeInvalidArgument, "public key is not RSA")
	}
	if rk.N.BitLen() < 2048 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "RSA keys must have at least 2048 bits")
	}
	return rk, nil
}

// NewAPIv3Key returns a random 32-character APIv3 key (letters and digits),
// the form the APIv3 SDKs expect.
func NewAPIv3Key() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Resource is the encrypted part of a notification.
type Resource struct {
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
	OriginalType   string `json:"original_type"`
}

// Algorithm is the only notification encryption algorithm.
const Algorithm = "AEAD_AES_256_GCM"

// Encrypt seals plaintext under the 32-byte APIv3 key with a fresh
// 12-character nonce. Errors: CodeInvalidArgument for a key of the wrong size.
func Encrypt(apiv3Key string, associatedData, originalType string, plaintext []byte) (Resource, error) {
	if len(apiv3Key) != 32 {
		return Resource{}, paygate.E(paygate.CodeInvalidArgument, "APIv3 key must be 32 bytes")
	}
	block, err := aes.NewCipher([]byte(apiv3Key))
	if err != nil {
		return Resource{}, paygate.Internal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return Resource{}, paygate.Internal(err)
	}
	nonce := NewNonce()[:12]
	ct := gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return Resource{Algorithm: Algorithm, Ciphertext: base64.StdEncoding.EncodeToString(ct),
		AssociatedData: associatedData, Nonce: nonce, OriginalType: originalType}, nil
}

// Decrypt opens a Resource. Errors: CodeInvalidArgument for an unknown
// algorithm, CodeUnauthenticated when the ciphertext does not authenticate.
func Decrypt(apiv3Key string, r Resource) ([]byte, error) {
	if r.Algorithm != Algorithm {
		return nil, paygate.E(paygate.CodeInvalidArgument, "unknown algorithm %q", r.Algorithm)
	}
	if len(apiv3Key) != 32 || len(r.Nonce) != 12 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "APIv3 key must be 32 bytes and the nonce 12")
	}
	ct, err := base64.StdEncoding.DecodeString(r.Ciphertext)
	if err != nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "ciphertext is not base64")
	}
	block, _ := aes.NewCipher([]byte(apiv3Key))
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, []byte(r.Nonce), ct, []byte(r.AssociatedData))
	if err != nil {
		return nil, unauth("notification does not authenticate")
	}
	return pt, nil
}
