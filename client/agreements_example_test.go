package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"paygate/client"
)

// Ask a customer for an agreement (a monthly subscription), send them to
// its sign_url, and learn of the signature by AGREEMENT.SIGNED (decode the
// notification into client.Agreement, see ExampleClient_ParseNotification).
func ExampleClient_CreateAgreement() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	a, err := c.CreateAgreement(context.Background(), client.CreateAgreementRequest{
		OutAgreementNo:  "SUB-20261122-0001", // your number: retrying with it is safe
		Plan:            "Tea box, monthly",
		PerPaymentLimit: 20_000, // 200.00 CNY a charge
		DailyLimit:      20_000,
		EndDate:         "2027-11-30",
		NotifyURL:       "https://shop.example.com/paygate/notify",
		ReturnURL:       "https://shop.example.com/subscription/done",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Status, a.SignURL) // PENDING https://…/agreements/agm_…
}

// Charge a signed agreement; the customer is not present.
func ExampleClient_ChargeAgreement() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	a, _ := c.GetAgreementByOutAgreementNo(ctx, "SUB-20261122-0001")
	ch, err := c.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{
		OutTradeNo:  "SUB-0001-2026-12", // safe to retry
		Description: "Tea box, December",
		Amount:      client.Amount{Total: 9_900},
	})
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == "LIMIT_EXCEEDED":
		log.Fatal("over the agreement's limits: try tomorrow or ask for a new agreement")
	case errors.As(err, &apiErr) && apiErr.Code == "CONFLICT":
		log.Fatal("the agreement is revoked or expired")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(ch.Status, ch.Order.ID) // SUCCESS ord_… (PROCESSING for another bank's card)
}

// Revoke an agreement, and list the ones still signed.
func ExampleClient_RevokeAgreement() {
	cfg, _ := client.LoadCredentials("data/demo-merchant.json", "http://127.0.0.1:8080")
	c, _ := client.New(cfg)
	ctx := context.Background()
	a, err := c.RevokeAgreement(ctx, "agm_0190b8d3a1c07cc1a2b3c4d5e6f70812")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Status, a.RevokedBy) // REVOKED MERCHANT
	page, _ := c.ListAgreements(ctx, client.ListAgreementsParams{Status: "SIGNED"})
	for _, s := range page.Data {
		fmt.Println(s.ID, s.Plan, s.Card)
	}
}
