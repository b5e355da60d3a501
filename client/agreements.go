package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// CreateAgreementRequest is the body of CreateAgreement: an agreement
// (mandate, 协议支付) you ask a customer to sign. OutAgreementNo is your
// own number: the same number with the same body returns the same
// agreement (safe to retry); with a different body it fails with 409
// ID_CONFLICT. PerPaymentLimit and DailyLimit (minor units, 0 for none)
// bound what you may charge; EndDate ("YYYY-MM-DD", optional) is the last
// day you may charge. Currency defaults to CNY.
type CreateAgreementRequest struct {
	OutAgreementNo  string `json:"out_agreement_no"`
	Plan            string `json:"plan"`
	Description     string `json:"description,omitempty"`
	Currency        string `json:"currency,omitempty"`
	PerPaymentLimit int64  `json:"per_payment_limit,omitempty"`
	DailyLimit      int64  `json:"daily_limit,omitempty"`
	EndDate         string `json:"end_date,omitempty"`
	NotifyURL       string `json:"notify_url"`
	ReturnURL       string `json:"return_url,omitempty"`
}

// Agreement is an agreement as paygate shows it (and as AGREEMENT.SIGNED
// and AGREEMENT.REVOKED notifications carry it). Status is PENDING (send
// the customer to SignURL before SignExpireTime), SIGNED (you may charge
// it), REVOKED (by you or the customer: RevokedBy) or EXPIRED. Card is
// the signed card, masked.
type Agreement struct {
	ID              string    `json:"id"`
	MchID           string    `json:"mchid"`
	OutAgreementNo  string    `json:"out_agreement_no"`
	Plan            string    `json:"plan"`
	Description     string    `json:"description,omitempty"`
	Currency        string    `json:"currency"`
	PerPaymentLimit int64     `json:"per_payment_limit,omitempty"`
	DailyLimit      int64     `json:"daily_limit,omitempty"`
	EndDate         string    `json:"end_date,omitempty"`
	NotifyURL       string    `json:"notify_url"`
	ReturnURL       string    `json:"return_url,omitempty"`
	Status          string    `json:"status"`
	SignURL         string    `json:"sign_url,omitempty"`
	SignExpireTime  time.Time `json:"sign_expire_time"`
	Card            string    `json:"card,omitempty"`
	Bank            string    `json:"bank,omitempty"`
	SignedTime      time.Time `json:"signed_time,omitzero"`
	RevokedTime     time.Time `json:"revoked_time,omitzero"`
	RevokedBy       string    `json:"revoked_by,omitempty"`
	ExpiredTime     time.Time `json:"expired_time,omitzero"`
	Sandbox         bool      `json:"sandbox"`
	CreateTime      time.Time `json:"create_time"`
}

// AgreementPage is one page of agreements, newest first.
type AgreementPage struct {
	Data       []Agreement `json:"data"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// ListAgreementsParams filters ListAgreements: Status "" for any, Cursor a
// previous page's NextCursor, Limit 0 for the default (20, at most 100).
type ListAgreementsParams struct {
	Status, Cursor string
	Limit          int
}

// ChargeAgreementRequest is the body of ChargeAgreement: the order it
// creates. OutTradeNo is idempotent like CreateOrder's; Amount.Currency
// and NotifyURL default to the agreement's.
type ChargeAgreementRequest struct {
	OutTradeNo  string `json:"out_trade_no"`
	Description string `json:"description"`
	Amount      Amount `json:"amount"`
	NotifyURL   string `json:"notify_url,omitempty"`
	Attach      string `json:"attach,omitempty"`
}

// AgreementCharge is the answer to ChargeAgreement: Status SUCCESS (paid
// at once from an own-bank card), PROCESSING (at another bank: the
// order's TRANSACTION.SUCCESS notification or GetOrder tells) or FAILED
// (declined at once; FailCode says why), and the order.
type AgreementCharge struct {
	AgreementID string `json:"agreement_id"`
	Status      string `json:"status"`
	FailCode    string `json:"fail_code,omitempty"`
	Order       Order  `json:"order"`
}

// CreateAgreement asks for an agreement (201), or returns the identical
// one you asked for before with this out_agreement_no (200).
func (c *Client) CreateAgreement(ctx context.Context, req CreateAgreementRequest) (Agreement, error) {
	var a Agreement
	_, err := c.Do(ctx, "POST", "/v1/agreements", req, &a)
	return a, err
}

// GetAgreement queries an agreement by paygate's id.
func (c *Client) GetAgreement(ctx context.Context, id string) (Agreement, error) {
	var a Agreement
	_, err := c.Do(ctx, "GET", "/v1/agreements/"+url.PathEscape(id), nil, &a)
	return a, err
}

// GetAgreementByOutAgreementNo queries an agreement by your number.
func (c *Client) GetAgreementByOutAgreementNo(ctx context.Context, no string) (Agreement, error) {
	var a Agreement
	_, err := c.Do(ctx, "GET", "/v1/agreements/out-agreement-no/"+url.PathEscape(no), nil, &a)
	return a, err
}

// ListAgreements lists your agreements, newest first, one page at a time.
func (c *Client) ListAgreements(ctx context.Context, p ListAgreementsParams) (AgreementPage, error) {
	q := url.Values{}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	path := "/v1/agreements"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out AgreementPage
	_, err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// RevokeAgreement revokes an agreement: a pending one can no longer be
// signed, a signed one no longer charged. Revoking again returns it
// unchanged; an expired one is 409 CONFLICT.
func (c *Client) RevokeAgreement(ctx context.Context, id string) (Agreement, error) {
	var a Agreement
	_, err := c.Do(ctx, "POST", "/v1/agreements/"+url.PathEscape(id)+"/revoke", nil, &a)
	return a, err
}

// ChargeAgreement charges a signed agreement without the customer: it
// creates an order and pays it from the signed card. Refusals change
// nothing: 409 CONFLICT (not signed, revoked, expired), 422
// LIMIT_EXCEEDED (the agreement's or the customer's limits), 422
// INSUFFICIENT_FUNDS, 409 OUT_TRADE_NO_USED.
func (c *Client) ChargeAgreement(ctx context.Context, id string, req ChargeAgreementRequest) (AgreementCharge, error) {
	var ch AgreementCharge
	_, err := c.Do(ctx, "POST", "/v1/agreements/"+url.PathEscape(id)+"/charges", req, &ch)
	return ch, err
}
