package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"paygate/client"
)

// Pay two customers at once from your available balance: one by the phone
// they registered with, one by card. Follow the batch until FINISHED (or
// wait for its PAYOUT_BATCH.FINISHED notification), paging through the
// items' results.
func ExampleClient_CreatePayoutBatch() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	b, err := c.CreatePayoutBatch(ctx, client.CreatePayoutBatchRequest{
		OutBatchNo: "REWARDS-2026-11", // your batch number: retrying with it is safe
		NotifyURL:  "https://shop.example.com/paygate/notify",
		Items: []client.PayoutItemRequest{
			{OutDetailNo: "REWARDS-2026-11-001", Amount: 5_000, // 50.00 CNY in fen
				Recipient: client.PayoutRecipient{Type: "ACCOUNT", Account: "13800000001"}},
			{OutDetailNo: "REWARDS-2026-11-002", Amount: 8_800,
				Recipient: client.PayoutRecipient{Type: "CARD", CardNumber: "6288880000000013", Name: "王小明"}},
		},
	})
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == "INSUFFICIENT_FUNDS":
		log.Fatal("the available balance cannot pay this batch; nothing was held")
	case err != nil:
		log.Fatal(err)
	}
	for _, it := range b.Items {
		if it.Status == "REJECTED" {
			fmt.Println(it.OutDetailNo, "rejected:", it.FailReason) // e.g. RECIPIENT_NOT_FOUND
		}
	}

	p := client.PayoutPage{Limit: 500}
	for {
		b, err = c.GetPayoutBatch(ctx, b.ID, p)
		if err != nil {
			log.Fatal(err)
		}
		for _, it := range b.Items {
			fmt.Println(it.OutDetailNo, it.Status, it.FailReason)
		}
		if b.NextCursor == "" {
			break
		}
		p.Cursor = b.NextCursor
	}
	fmt.Println(b.Status, b.SuccessCount, b.SuccessAmount) // FINISHED 2 13800 once every item is final
}
