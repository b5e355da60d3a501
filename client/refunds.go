package client

import (
	"context"
	"net/url"
	"time"
)

// RefundAmount is a refund's amounts in integer minor units: Refund is
// what you asked to give back, Total the order's total, PayerRefund what
// reaches the payer, FeeRefund the share of the platform fee returned to
// you (refunds before settlement only).
type RefundAmount struct {
	Refund      int64  `json:"refund"`
	Total       int64  `json:"total"`
	PayerRefund int64  `json:"payer_refund,omitempty"`
	FeeRefund   int64  `json:"fee_refund,omitempty"`
	Currency    string `json:"currency,omitempty"`
}

// CreateRefundRequest is the body of CreateRefund. Name the order by
// OrderID or OutTradeNo. OutRefundNo is your own refund number: sending the
// same number with the same body again returns the same refund (safe to
// retry); with a different body it fails with 409 OUT_REFUND_NO_USED.
// Amount.Total must be the order's total. IfInsufficient ("FAIL", the
// default, or "WAIT") says what happens when the order is settled and your
// settled balance cannot pay the refund: fail with 422
// INSUFFICIENT_FUNDS, or wait PROCESSING until it can. NotifyURL defaults
// to the order's.
type CreateRefundRequest struct {
	OrderID        string       `json:"order_id,omitempty"`
	OutTradeNo     string       `json:"out_trade_no,omitempty"`
	OutRefundNo    string       `json:"out_refund_no"`
	Reason         string       `json:"reason,omitempty"`
	NotifyURL      string       `json:"notify_url,omitempty"`
	Amount         RefundAmount `json:"amount"`
	IfInsufficient string       `json:"if_insufficient,omitempty"`
}

// Refund is a refund as paygate shows it (and as REFUND.* notifications
// carry it). Status is PROCESSING, SUCCESS (the money is back with the
// payer), ABNORMAL (the channel failed it: refund again with a new
// OutRefundNo) or CLOSED (closed while waiting for funds). FundsSource is
// PENDING (before settlement: the payment reversed, fee included) or
// SETTLED (paid from your settled balance).
type Refund struct {
	ID              string       `json:"id"`
	MchID           string       `json:"mchid"`
	OutRefundNo     string       `json:"out_refund_no"`
	OrderID         string       `json:"order_id"`
	OutTradeNo      string       `json:"out_trade_no"`
	TransactionID   string       `json:"transaction_id"`
	Channel         string       `json:"channel"`
	ChannelRefundNo string       `json:"channel_refund_no,omitempty"`
	Reason          string       `json:"reason,omitempty"`
	Status          string       `json:"status"`
	Amount          RefundAmount `json:"amount"`
	FundsSource     string       `json:"funds_source"`
	IfInsufficient  string       `json:"if_insufficient"`
	FailCode        string       `json:"fail_code,omitempty"`
	CreateTime      time.Time    `json:"create_time"`
	SuccessTime     time.Time    `json:"success_time,omitzero"`
	CloseTime       time.Time    `json:"close_time,omitzero"`
}

// CreateRefund refunds all or part of a paid order (201), or returns the
// identical refund you requested before with this out_refund_no (200).
// Several partial refunds may follow each other; together they never
// exceed what was paid (422 LIMIT_EXCEEDED).
func (c *Client) CreateRefund(ctx context.Context, req CreateRefundRequest) (Refund, error) {
	var r Refund
	_, err := c.Do(ctx, "POST", "/v1/refunds", req, &r)
	return r, err
}

// GetRefund queries a refund by paygate's id.
func (c *Client) GetRefund(ctx context.Context, id string) (Refund, error) {
	var r Refund
	_, err := c.Do(ctx, "GET", "/v1/refunds/"+url.PathEscape(id), nil, &r)
	return r, err
}

// GetRefundByOutRefundNo queries a refund by your out_refund_no.
func (c *Client) GetRefundByOutRefundNo(ctx context.Context, outRefundNo string) (Refund, error) {
	var r Refund
	_, err := c.Do(ctx, "GET", "/v1/refunds/out-refund-no/"+url.PathEscape(outRefundNo), nil, &r)
	return r, err
}

// ListRefunds lists an order's refunds, newest first (at most 50).
func (c *Client) ListRefunds(ctx context.Context, orderID string) ([]Refund, error) {
	var out struct {
		Data []Refund `json:"data"`
	}
	_, err := c.Do(ctx, "GET", "/v1/refunds?"+url.Values{"order_id": {orderID}}.Encode(), nil, &out)
	return out.Data, err
}

// CloseRefund closes a refund still waiting for funds (IfInsufficient
// "WAIT"); nothing had moved. 409 CONFLICT once the refund went further.
func (c *Client) CloseRefund(ctx context.Context, id string) (Refund, error) {
	var r Refund
	_, err := c.Do(ctx, "POST", "/v1/refunds/"+url.PathEscape(id)+"/close", nil, &r)
	return r, err
}
