package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"paygate/client"
)

// Refund many orders at once: the batch is accepted at once and refunded
// line by line in the background. Follow it until FINISHED (or wait for
// its REFUND.BATCH_FINISHED notification), paging through the lines'
// outcomes; a bad line fails alone and says why.
func ExampleClient_CreateRefundBatch() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	b, err := c.CreateRefundBatch(ctx, client.CreateRefundBatchRequest{
		OutBatchNo: "RETURNS-2026-11-22", // your batch number: retrying with it is safe
		NotifyURL:  "https://shop.example.com/paygate/notify",
		Items: []client.RefundBatchItemRequest{
			{OutRefundNo: "20261122-0001-R1", OutTradeNo: "20261122-0001", Reason: "returned",
				Amount: client.RefundAmount{Refund: 4_900, Total: 4_900, Currency: "CNY"}},
			{OutRefundNo: "20261122-0002-R1", OutTradeNo: "20261122-0002", Reason: "one item short",
				Amount: client.RefundAmount{Refund: 1_000, Total: 9_800, Currency: "CNY"}},
		},
	})
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == "OUT_BATCH_NO_USED":
		log.Fatal("this batch number was used for a different batch")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(b.Status, b.PendingCount) // PROCESSING 2

	p := client.RefundBatchPage{Limit: 500}
	for {
		b, err = c.GetRefundBatch(ctx, b.ID, p)
		if err != nil {
			log.Fatal(err)
		}
		for _, it := range b.Items {
			switch it.Status {
			case "ACCEPTED":
				fmt.Println(it.OutRefundNo, it.RefundID, it.RefundStatus) // SUCCESS, or PROCESSING through a channel
			case "FAILED":
				fmt.Println(it.OutRefundNo, it.FailCode, it.FailField, it.FailMessage) // e.g. LIMIT_EXCEEDED amount.refund
			}
		}
		if b.NextCursor == "" {
			break
		}
		p.Cursor = b.NextCursor
	}
	fmt.Println(b.Status, b.AcceptedCount, b.AcceptedAmount) // FINISHED 2 5900 once every line has its outcome
}

// Query a batch by your own batch number, e.g. after a restart.
func ExampleClient_GetRefundBatchByOutBatchNo() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	b, err := c.GetRefundBatchByOutBatchNo(context.Background(), "RETURNS-2026-11-22", client.RefundBatchPage{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Status, b.AcceptedCount, b.FailedCount, b.PendingCount)
}
