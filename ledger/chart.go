package ledger

import "paygate"

// Account codes of paygate's chart of accounts.
const (
	CodeChannelClearing = 100 // asset: money the channel owes us for confirmed payments
	CodeCustomerDeposit = 200 // liability: a customer's account balance
	CodeCardAccount     = 210 // liability: the balance behind one of the institution's own cards
	CodeMerchantPending = 300 // liability: merchant funds not yet settled
	CodeMerchantSettled = 310 // liability: merchant funds settled and available
	CodePlatformFee     = 400 // income: fees kept by the platform
	CodeSuspense        = 900 // liability: money awaiting review (e.g. paid after close)
	CodeSandboxFunding  = 910 // asset: where the sandbox's seeded customer balances come from
	HotShards           = 16  // shards of accounts every payment touches
)

// ChannelClearing is the clearing account of a channel in a currency: debited
// by every payment the channel confirms. It is hot, so it is sharded.
func ChannelClearing(channel string, cur paygate.Currency) Account {
	return Account{ID: "chan:" + channel + ":" + string(cur), Currency: cur, Code: CodeChannelClearing, Owner: "channel:" + channel, Normal: Debit, Shards: HotShards}
}

// PlatformFee is the platform's fee income account in a currency, credited
// by every payment; sharded because it is hot.
func PlatformFee(cur paygate.Currency) Account {
	return Account{ID: "platform:fee:" + string(cur), Currency: cur, Code: CodePlatformFee, Owner: "platform", Normal: Credit, Shards: HotShards}
}

// PlatformFeeFor is PlatformFee for live money and a separate sandbox fee
// account for sandbox merchants, so simulated payments never mix with the
// platform's real income.
func PlatformFeeFor(cur paygate.Currency, sandbox bool) Account {
	a := PlatformFee(cur)
	if sandbox {
		a.ID, a.Owner = "sandbox:fee:"+string(cur), "sandbox"
	}
	return a
}

// SuspenseFor is Suspense for live money and a separate sandbox suspense
// account for sandbox merchants.
func SuspenseFor(cur paygate.Currency, sandbox bool) Account {
	a := Suspense(cur)
	if sandbox {
		a.ID, a.Owner = "sandbox:suspense:"+string(cur), "sandbox"
	}
	return a
}

// MerchantPending is a merchant's pending-settlement account in a currency.
// It may not go negative.
func MerchantPending(mchID string, cur paygate.Currency) Account {
	return Account{ID: "mch:" + mchID + ":pending:" + string(cur), Currency: cur, Code: CodeMerchantPending, Owner: mchID, Normal: Credit, Flags: DebitsMustNotExceedCredits}
}

// MerchantSettled is a merchant's settled, available balance in a currency.
func MerchantSettled(mchID string, cur paygate.Currency) Account {
	return Account{ID: "mch:" + mchID + ":settled:" + string(cur), Currency: cur, Code: CodeMerchantSettled, Owner: mchID, Normal: Credit, Flags: DebitsMustNotExceedCredits}
}

// Suspense holds money that arrived but cannot be booked normally (a payment
// confirmed after its order closed) until it is refunded or reviewed.
func Suspense(cur paygate.Currency) Account {
	return Account{ID: "platform:suspense:" + string(cur), Currency: cur, Code: CodeSuspense, Owner: "platform", Normal: Credit}
}

// CustomerDeposit is a customer's balance account in a currency: credited
// when money comes in, debited by balance payments, never overdrawn.
func CustomerDeposit(customerID string, cur paygate.Currency) Account {
	return Account{ID: "cus:" + customerID + ":" + string(cur), Currency: cur, Code: CodeCustomerDeposit, Owner: customerID, Normal: Credit, Flags: DebitsMustNotExceedCredits}
}

// CardAccount is the account behind one of the institution's own cards
// (debit or corporate), owned by the customer: a card payment debits it,
// and it is never overdrawn.
func CardAccount(cardID, customerID string, cur paygate.Currency) Account {
	return Account{ID: "card:" + cardID + ":" + string(cur), Currency: cur, Code: CodeCardAccount, Owner: customerID, Normal: Credit, Flags: DebitsMustNotExceedCredits}
}

// SandboxFunding is the sandbox's source of seeded customer money: debited
// when the sandbox seed credits a test card or balance.
func SandboxFunding(cur paygate.Currency) Account {
	return Account{ID: "sandbox:funding:" + string(cur), Currency: cur, Code: CodeSandboxFunding, Owner: "sandbox", Normal: Debit}
}
