package sms

import (
	"context"
	"time"

	"paygate"
)

// InboxMessage is a message the sandbox sender delivered.
type InboxMessage struct {
	Seq        int64     `json:"-"`
	MessageID  string    `json:"message_id"`
	Phone      string    `json:"phone"`
	Purpose    string    `json:"purpose"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
}

// Code returns the first run of exactly six ASCII digits in the text (the
// one-time code of an OTP message), or "".
func (m InboxMessage) Code() string {
	t := m.Text
	for i := 0; i < len(t); {
		if !isDigit(t[i]) {
			i++
			continue
		}
		j := i
		for j < len(t) && isDigit(t[j]) {
			j++
		}
		if j-i == 6 {
			return t[i:j]
		}
		i = j
	}
	return ""
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// Inbox stores what the sandbox sender delivers; store.DB.SMSInbox
// implements it. It is the only place message text is kept in clear.
type Inbox interface {
	// Deliver stores m unless a message with its id is there already
	// (delivery is at least once, the inbox keeps one copy).
	Deliver(ctx context.Context, m InboxMessage) error
	// Latest returns the newest message to the phone, and false if none.
	Latest(ctx context.Context, phone string) (InboxMessage, bool, error)
	// DeleteBefore deletes up to limit messages received before before,
	// and returns how many it deleted.
	DeleteBefore(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Sandbox is the Sender of the sandbox: it delivers every message into an
// Inbox that testers read. It is safe for concurrent use.
type Sandbox struct {
	inbox Inbox
	clock paygate.Clock
}

// NewSandbox returns a sandbox Sender over inbox.
func NewSandbox(inbox Inbox, clock paygate.Clock) *Sandbox {
	return &Sandbox{inbox: inbox, clock: clock}
}

// Send implements Sender: it stores m in the inbox (once per id) and returns
// "sandbox-" and the message id.
func (s *Sandbox) Send(ctx context.Context, m Message) (string, error) {
	err := s.inbox.Deliver(ctx, InboxMessage{MessageID: m.ID, Phone: m.Phone, Purpose: m.Purpose, Text: m.Text,
		ReceivedAt: s.clock.Now().UTC().Truncate(time.Microsecond)})
	if err != nil {
		return "", err
	}
	return "sandbox-" + m.ID, nil
}

// Latest returns the newest message the sandbox delivered to phone (in any
// accepted spelling, see NormalizePhone). Errors: CodeInvalidArgument for a
// malformed phone, CodeNotFound when nothing was delivered to it.
func (s *Sandbox) Latest(ctx context.Context, phone string) (InboxMessage, error) {
	p, err := NormalizePhone(phone)
	if err != nil {
		return InboxMessage{}, err
	}
	m, ok, err := s.inbox.Latest(ctx, p)
	if err != nil {
		return InboxMessage{}, err
	}
	if !ok {
		return InboxMessage{}, paygate.E(paygate.CodeNotFound, "no message was delivered to that phone")
	}
	return m, nil
}
