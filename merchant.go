package paygate

import (
	"strings"
	"time"
)

// MerchantStatus is a merchant's life-cycle state.
type MerchantStatus string

// Merchant statuses. Only sandbox and live merchants may call the API;
// a sandbox merchant's money moves only through simulated channels.
const (
	MerchantSandbox   MerchantStatus = "SANDBOX"
	MerchantPending   MerchantStatus = "PENDING_REVIEW"
	MerchantLive      MerchantStatus = "LIVE"
	MerchantSuspended MerchantStatus = "SUSPENDED"
	MerchantClosed    MerchantStatus = "CLOSED"
)

// CanTransact reports whether a merchant in status s may call the API.
func (s MerchantStatus) CanTransact() bool { return s == MerchantSandbox || s == MerchantLive }

// Merchant is a party that takes payments through paygate. ParentID is set
// for a sub-merchant of a platform merchant.
type Merchant struct {
	ID                 string         `json:"mchid"`
	ParentID           string         `json:"parent_mchid,omitempty"`
	Name               string         `json:"name"`
	Status             MerchantStatus `json:"status"`
	SettlementCurrency Currency       `json:"settlement_currency"`
	FeeRateBps         int64          `json:"fee_rate_bps"` // basis points of each payment kept as the platform fee
	NotifyHosts        []string       `json:"notify_hosts,omitempty"`
	IPAllowList        []string       `json:"ip_allow_list,omitempty"` // CIDRs or addresses; empty allows any
	CreatedAt          time.Time      `json:"created_at"`
}

// Sandbox reports whether the merchant is in the sandbox.
func (m Merchant) Sandbox() bool { return m.Status == MerchantSandbox }

// Fee returns the platform fee on amount at the merchant's rate, rounded
// half up, never more than amount. It uses integers only.
func (m Merchant) Fee(amount int64) int64 {
	if m.FeeRateBps <= 0 || amount <= 0 {
		return 0
	}
	// amount*bps may overflow for huge amounts; split to stay exact.
	q, r := amount/10_000, amount%10_000
	fee := q*m.FeeRateBps + (r*m.FeeRateBps+5_000)/10_000
	if fee > amount {
		fee = amount
	}
	return fee
}

// NotifyHostAllowed reports whether notifications may go to host: always when
// the merchant lists no notify hosts; otherwise host must equal a listed
// name or, for an entry "*.example.com", be a subdomain of example.com.
// Comparison ignores case and a trailing dot.
func (m Merchant) NotifyHostAllowed(host string) bool {
	if len(m.NotifyHosts) == 0 {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range m.NotifyHosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}
