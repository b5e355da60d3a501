package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// PayoutRecipient names whom a payout item pays. Type "ACCOUNT": a
// customer's balance account, by the mobile phone they registered with
// (Account; Name optional, checked against their verified name when
// given). Type "CARD": a card, by CardNumber and the holder's Name; an
// own-bank card is credited at once, another bank's card through the
// interbank channel.
type PayoutRecipient struct {
	Type       string `json:"type"`
	Account    string `json:"account,omitempty"`
	CardNumber string `json:"card_number,omitempty"`
	Name       string `json:"name,omitempty"`
}

// PayoutItemRequest is one line of a batch. OutDetailNo is your own number
// for it, unique across your batches; Amount is in minor units.
type PayoutItemRequest struct {
	OutDetailNo string          `json:"out_detail_no"`
	Amount      int64           `json:"amount"`
	Recipient   PayoutRecipient `json:"recipient"`
	Remark      string          `json:"remark,omitempty"`
}

// CreatePayoutBatchRequest is the body of CreatePayoutBatch: up to 1,000
// items. OutBatchNo is your own batch number: sending it again with the
// same body returns the same batch (safe to retry); with a different body
// it fails with 409 OUT_BATCH_NO_USED. Currency "" means CNY. NotifyURL,
// when set, receives PAYOUT_BATCH.FINISHED.
type CreatePayoutBatchRequest struct {
	OutBatchNo string              `json:"out_batch_no"`
	Currency   string              `json:"currency,omitempty"`
	Remark     string              `json:"remark,omitempty"`
	NotifyURL  string              `json:"notify_url,omitempty"`
	Items      []PayoutItemRequest `json:"items"`
}

// PayoutRecipientView is a recipient as paygate shows it: masked only.
// Kind is ACCOUNT, OWN_CARD or OTHER_BANK_CARD ("" for a line rejected
// before its recipient was known).
type PayoutRecipientView struct {
	Type   string `json:"type"`
	Kind   string `json:"kind,omitempty"`
	Masked string `json:"masked"`
	Name   string `json:"name,omitempty"`
}

// PayoutItem is one line of a batch. Status is REJECTED (refused at
// acceptance, nothing held; FailReason says why), PENDING or PROCESSING
// (held, on its way), SUCCESS (paid) or FAILED (not paid; its money is
// yours again; FailReason says why).
type PayoutItem struct {
	ID          string              `json:"id"`
	BatchID     string              `json:"batch_id"`
	OutBatchNo  string              `json:"out_batch_no"`
	Seq         int                 `json:"seq"`
	OutDetailNo string              `json:"out_detail_no"`
	Amount      int64               `json:"amount"`
	Currency    string              `json:"currency"`
	Recipient   PayoutRecipientView `json:"recipient"`
	Remark      string              `json:"remark,omitempty"`
	Status      string              `json:"status"`
	FailReason  string              `json:"fail_reason,omitempty"`
	Channel     string              `json:"channel,omitempty"`
	ChannelNo   string              `json:"channel_no,omitempty"`
	CreateTime  time.Time           `json:"create_time"`
	UpdateTime  time.Time           `json:"update_time"`
	FinishTime  time.Time           `json:"finish_time,omitzero"`
}

// PayoutBatch is a batch with one page of its items (in batch order;
// NextCursor continues, "" on the last page). Status is PROCESSING until
// every accepted item is SUCCESS or FAILED, then FINISHED. The counts:
// TotalCount lines, RejectedCount refused, AcceptedCount (AcceptedAmount)
// held, SuccessCount/Amount paid, FailCount/Amount released.
type PayoutBatch struct {
	ID             string       `json:"id"`
	MchID          string       `json:"mchid"`
	OutBatchNo     string       `json:"out_batch_no"`
	Currency       string       `json:"currency"`
	Remark         string       `json:"remark,omitempty"`
	Status         string       `json:"status"`
	TotalCount     int          `json:"total_count"`
	RejectedCount  int          `json:"rejected_count"`
	AcceptedCount  int          `json:"accepted_count"`
	AcceptedAmount int64        `json:"accepted_amount"`
	SuccessCount   int          `json:"success_count"`
	SuccessAmount  int64        `json:"success_amount"`
	FailCount      int          `json:"fail_count"`
	FailAmount     int64        `json:"fail_amount"`
	CreateTime     time.Time    `json:"create_time"`
	UpdateTime     time.Time    `json:"update_time"`
	FinishTime     time.Time    `json:"finish_time,omitzero"`
	Items          []PayoutItem `json:"items"`
	NextCursor     string       `json:"next_cursor,omitempty"`
}

// PayoutPage selects a page of a batch's items: Cursor "" for the first
// page or a PayoutBatch.NextCursor; Limit 0 means 100, at most 1,000.
type PayoutPage struct {
	Cursor string
	Limit  int
}

func (p PayoutPage) query() string {
	v := url.Values{}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	if p.Limit != 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// CreatePayoutBatch pays many recipients at once from your available
// balance (201), or returns the identical batch you submitted before with
// this out_batch_no (200). Bad lines are REJECTED alone; if your balance
// cannot pay the accepted lines' total, the whole batch is refused with
// 422 INSUFFICIENT_FUNDS and nothing changes.
func (c *Client) CreatePayoutBatch(ctx context.Context, req CreatePayoutBatchRequest) (PayoutBatch, error) {
	var b PayoutBatch
	_, err := c.Do(ctx, "POST", "/v1/payouts/batches", req, &b)
	return b, err
}

// GetPayoutBatch queries a batch by paygate's id, with a page of its items.
func (c *Client) GetPayoutBatch(ctx context.Context, id string, page PayoutPage) (PayoutBatch, error) {
	var b PayoutBatch
	_, err := c.Do(ctx, "GET", "/v1/payouts/batches/"+url.PathEscape(id)+page.query(), nil, &b)
	return b, err
}

// GetPayoutBatchByOutBatchNo queries a batch by your out_batch_no, with a
// page of its items.
func (c *Client) GetPayoutBatchByOutBatchNo(ctx context.Context, outBatchNo string, page PayoutPage) (PayoutBatch, error) {
	var b PayoutBatch
	_, err := c.Do(ctx, "GET", "/v1/payouts/batches/out-batch-no/"+url.PathEscape(outBatchNo)+page.query(), nil, &b)
	return b, err
}

// GetPayoutDetail queries an accepted item by your out_detail_no.
func (c *Client) GetPayoutDetail(ctx context.Context, outDetailNo string) (PayoutItem, error) {
	var it PayoutItem
	_, err := c.Do(ctx, "GET", "/v1/payouts/details/"+url.PathEscape(outDetailNo), nil, &it)
	return it, err
}
