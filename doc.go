// Package paygate holds the domain nouns shared by every part of the payment
// platform: the Error type and its stable codes, Money and currencies, ids,
// the injectable Clock and the business-day Calendar. It performs no I/O.
//
// Adapters (store, httpapi, channel/*) and use cases (ledger, payment, ...)
// import this package; it imports none of them.
package paygate
