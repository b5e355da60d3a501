package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// RefundBatchItemRequest is one line of a refund batch: a refund of the
// order named by OrderID or OutTradeNo, exactly as CreateRefundRequest
// (OutRefundNo is your refund number; Amount.Total the order's total).
type RefundBatchItemRequest struct {
	OutRefundNo    string       `json:"out_refund_no"`
	OrderID        string       `json:"order_id,omitempty"`
	OutTradeNo     string       `json:"out_trade_no,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	Amount         RefundAmount `json:"amount"`
	IfInsufficient string       `json:"if_insufficient,omitempty"`
}

// CreateRefundBatchRequest is the body of CreateRefundBatch: up to 1,000
// refunds. OutBatchNo is your batch number: sending the same number with
// the same body again returns the same batch (safe to retry, and it gets a
// batch still PROCESSING moving at once); with a different body it fails
// with 409 OUT_BATCH_NO_USED. Currency (default CNY) is the batch's.
// NotifyURL, when set, receives the refunds' REFUND.* notifications and
// the batch's REFUND.BATCH_FINISHED.
type CreateRefundBatchRequest struct {
	OutBatchNo string                   `json:"out_batch_no"`
	NotifyURL  string                   `json:"notify_url,omitempty"`
	Currency   string                   `json:"currency,omitempty"`
	Items      []RefundBatchItemRequest `json:"items"`
}

// RefundBatchItem is one line of a batch and its outcome: Status PENDING,
// ACCEPTED (RefundID names the refund, RefundStatus is its status now) or
// FAILED (FailCode is the error code CreateRefund would have answered,
// with FailField and FailMessage).
type RefundBatchItem struct {
	Line           int          `json:"line"`
	OutRefundNo    string       `json:"out_refund_no"`
	OrderID        string       `json:"order_id,omitempty"`
	OutTradeNo     string       `json:"out_trade_no,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	Amount         RefundAmount `json:"amount"`
	IfInsufficient string       `json:"if_insufficient,omitempty"`
	Status         string       `json:"status"`
	RefundID       string       `json:"refund_id,omitempty"`
	RefundStatus   string       `json:"refund_status,omitempty"`
	FailCode       string       `json:"fail_code,omitempty"`
	FailField      string       `json:"fail_field,omitempty"`
	FailMessage    string       `json:"fail_message,omitempty"`
}

// RefundBatch is a refund batch: Status PROCESSING until every line is
// ACCEPTED or FAILED, then FINISHED. A query carries one page of Items in
// line order; NextCursor, when set, fetches the next (RefundBatchPage).
type RefundBatch struct {
	ID             string            `json:"id"`
	MchID          string            `json:"mchid"`
	OutBatchNo     string            `json:"out_batch_no"`
	Status         string            `json:"status"`
	Currency       string            `json:"currency"`
	TotalCount     int               `json:"total_count"`
	AcceptedCount  int               `json:"accepted_count"`
	FailedCount    int               `json:"failed_count"`
	PendingCount   int               `json:"pending_count"`
	AcceptedAmount int64             `json:"accepted_amount"`
	CreateTime     time.Time         `json:"create_time"`
	UpdateTime     time.Time         `json:"update_time"`
	FinishTime     time.Time         `json:"finish_time,omitzero"`
	Items          []RefundBatchItem `json:"items,omitempty"`
	NextCursor     string            `json:"next_cursor,omitempty"`
}

// RefundBatchPage selects a page of a batch's lines: after Cursor (a
// previous page's NextCursor; empty: the first page), at most Limit (0:
// 100; at most 1,000).
type RefundBatchPage struct {
	Cursor string
	Limit  int
}

func (p RefundBatchPage) query() string {
	v := url.Values{}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// CreateRefundBatch submits a refund batch (202: accepted, PROCESSING), or
// returns the identical batch you submitted before with this out_batch_no
// (200). The answer is the batch's counts without its lines; each line is
// refunded in the background exactly as CreateRefund would, and a bad line
// fails alone: follow the batch with GetRefundBatch, or wait for its
// REFUND.BATCH_FINISHED notification.
func (c *Client) CreateRefundBatch(ctx context.Context, req CreateRefundBatchRequest) (RefundBatch, error) {
	var b RefundBatch
	_, err := c.Do(ctx, "POST", "/v1/refunds/batches", req, &b)
	return b, err
}

// GetRefundBatch queries a refund batch by paygate's id, with one page of
// its lines.
func (c *Client) GetRefundBatch(ctx context.Context, id string, page RefundBatchPage) (RefundBatch, error) {
	var b RefundBatch
	_, err := c.Do(ctx, "GET", "/v1/refunds/batches/"+url.PathEscape(id)+page.query(), nil, &b)
	return b, err
}

// GetRefundBatchByOutBatchNo queries a refund batch by your out_batch_no,
// with one page of its lines.
func (c *Client) GetRefundBatchByOutBatchNo(ctx context.Context, outBatchNo string, page RefundBatchPage) (RefundBatch, error) {
	var b RefundBatch
	_, err := c.Do(ctx, "GET", "/v1/refunds/batches/out-batch-no/"+url.PathEscape(outBatchNo)+page.query(), nil, &b)
	return b, err
}
