package main

// A browser test of the hosted agreement sign page (docs/AGREEMENTS.md):
// chromium signs a merchant's agreement as the customer does, on a desktop
// and a phone viewport.
//
// UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/agreement-sign.png and
// agreement-signed.png (the desktop's; shown in docs/AGREEMENTS.md).

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"paygate/client"
)

// TestAgreementSignInBrowser: on each viewport the merchant asks for an
// agreement with the SDK; the customer opens its sign_url, sees the
// merchant, the plan and the limits, types the card number and the
// holder's details, has the SMS code sent (the page shows the card and
// phone masked only), types a wrong code (the code form stays up with the
// message), then the right one, and the page shows the agreement signed
// with the way back to the merchant and no form left. No page breaks the
// Content-Security-Policy or, on the phone, needs horizontal scrolling.
// The merchant then receives AGREEMENT.SIGNED (decrypted with the SDK) and
// the agreement queries SIGNED with the card masked.
func TestAgreementSignInBrowser(t *testing.T) {
	t.Parallel()
	m := startMethodsE2E(t)
	ctx := context.Background()
	for _, vp := range []methodViewport{desktopViewport, phoneViewport} {
		t.Run(vp.name, func(t *testing.T) {
			a, err := m.client.CreateAgreement(ctx, client.CreateAgreementRequest{OutAgreementNo: "BR-AGR-" + vp.name,
				Plan: "Jasmine tea, one box a month", Description: "100 g of jasmine tea on the first of every month",
				PerPaymentLimit: 6_800, DailyLimit: 6_800, EndDate: "2027-12-31",
				NotifyURL: m.hook.URL + "/notify/agr-" + vp.name, ReturnURL: m.returnURL("agr-" + vp.name)})
			require.NoError(t, err)
			require.Equal(t, m.srv.URL+"/agreements/"+a.ID, a.SignURL)

			pr := m.tab(t, vp)
			pr.do(t, chromedp.Navigate(a.SignURL), chromedp.WaitVisible(chromedp.ID("sign-start")))
			require.Equal(t, "Tea House", pr.text(t, "merchant"))
			require.Equal(t, "Jasmine tea, one box a month", pr.text(t, "plan"))
			require.Equal(t, "At most CNY 68.00 a payment", pr.text(t, "limit-per-payment"))
			require.Equal(t, "At most CNY 68.00 a day", pr.text(t, "limit-daily"))
			require.Contains(t, pr.text(t, "limit-end"), "Until 2027-12-31 (last day)")
			pr.check(t)
			pr.fill(t, [2]string{"sg-card", "6288 8800 0000 0013"}, [2]string{"sg-name", sandboxName}, [2]string{"sg-id", sandboxID},
				[2]string{"sg-phone", sandboxPhone})
			pr.shot(t, "agreement-sign.png", "sign")

			m.serial.Lock()
			code := m.code(t, func() { pr.do(t, chromedp.Click(chromedp.ID("sign-send"))) })
			m.serial.Unlock()
			pr.do(t, chromedp.WaitVisible(chromedp.ID("code")))
			sent := pr.text(t, "code-sent")
			require.Contains(t, sent, "628888******0013")
			require.Contains(t, sent, "138****0001")
			require.NotContains(t, sent, ownCard)
			pr.check(t)

			wrong := fmt.Sprintf("%06d", (int(code[0]-'0')*100_000+123_457)%1_000_000)
			pr.fill(t, [2]string{"code", wrong})
			pr.do(t, chromedp.Click(chromedp.ID("sign-submit")), chromedp.WaitVisible(chromedp.ID("sign-error")))
			require.NotEmpty(t, pr.text(t, "sign-error"))
			require.Empty(t, run(t, pr, chromedp.Value(chromedp.ID("code"))), "the wrong code is not echoed")
			pr.check(t)

			pr.fill(t, [2]string{"code", code})
			pr.do(t, chromedp.Click(chromedp.ID("sign-submit")), chromedp.WaitVisible(chromedp.CSS(`#agreement-status[data-state="signed"]`)))
			require.Equal(t, "Signed", pr.text(t, "status-title"))
			href := run(t, pr, chromedp.AttributeValue(chromedp.ID("return"), "href"))
			require.Equal(t, m.returnURL("agr-"+vp.name), href.Value)
			n := run(t, pr, chromedp.Evaluate[int](`document.querySelectorAll("form").length`))
			require.Zero(t, n, "no form is left on a signed agreement's page")
			pr.check(t)
			pr.shot(t, "agreement-signed.png", "agreement-status")

			var signed client.Agreement
			agEvent(t, m.e2e, "AGREEMENT.SIGNED", a.ID, &signed)
			require.Equal(t, "SIGNED", signed.Status)
			got, err := m.client.GetAgreement(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, "SIGNED", got.Status)
			require.Equal(t, "628888******0013", got.Card)
		})
	}
}
