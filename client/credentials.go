package client

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"paygate/signing"
)

// Credentials is the JSON `paygate merchant create --json` prints (and
// `paygate serve` writes for its demo merchant to data/demo-merchant.json).
type Credentials struct {
	MchID                  string `json:"mchid"`
	MerchantSerialNo       string `json:"merchant_serial_no"`
	MerchantPrivateKeyFile string `json:"merchant_private_key_file"`
	APIv3Key               string `json:"apiv3_key"`
	PlatformSerialNo       string `json:"platform_serial_no"`
	PlatformPublicKeyFile  string `json:"platform_public_key_file"`
}

// LoadCredentials reads a credentials JSON file and the two PEM files it
// names (relative paths are taken from the JSON file's directory first, then
// the working directory) and returns a Config for baseURL.
func LoadCredentials(path, baseURL string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("paygate client: %w", err)
	}
	var cr Credentials
	if err := json.Unmarshal(b, &cr); err != nil {
		return Config{}, fmt.Errorf("paygate client: credentials file: %w", err)
	}
	read := func(p string) ([]byte, error) {
		if !filepath.IsAbs(p) {
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(path), filepath.Base(p))); err == nil {
				return b, nil
			}
		}
		return os.ReadFile(p)
	}
	kb, err := read(cr.MerchantPrivateKeyFile)
	if err != nil {
		return Config{}, fmt.Errorf("paygate client: merchant private key: %w", err)
	}
	key, err := signing.ParsePrivateKeyPEM(kb)
	if err != nil {
		return Config{}, fmt.Errorf("paygate client: merchant private key: %w", err)
	}
	pb, err := read(cr.PlatformPublicKeyFile)
	if err != nil {
		return Config{}, fmt.Errorf("paygate client: platform public key: %w", err)
	}
	pub, err := signing.ParsePublicKeyPEM(pb)
	if err != nil {
		return Config{}, fmt.Errorf("paygate client: platform public key: %w", err)
	}
	return Config{
		BaseURL: baseURL, MchID: cr.MchID, SerialNo: cr.MerchantSerialNo, PrivateKey: key,
		PlatformKeys: map[string]*rsa.PublicKey{cr.PlatformSerialNo: pub}, APIv3Key: cr.APIv3Key,
	}, nil
}
