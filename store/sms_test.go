package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
)

// TestSMSStoreSkipLocked: on PostgreSQL two workers claiming at once get
// different messages; neither waits for the other.
func TestSMSStoreSkipLocked(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	kr, err := sms.NewKeyring(make([]byte, 32))
	require.NoError(t, err)
	clock := paygate.NewManualClock(ot0)
	require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
		return sms.Enqueue(ctx, tx, kr, clock,
			sms.Message{ID: "sms_a", Phone: "13800000000", Purpose: "t", Text: "a"},
			sms.Message{ID: "sms_b", Phone: "13800000000", Purpose: "t", Text: "b", CreatedAt: ot0.Add(time.Microsecond)})
	}))
	// Hold sms_a's row lock as a claim in flight would.
	tx, err := db.SQL.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	var id string
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT id FROM sms_messages WHERE id = 'sms_a' FOR UPDATE`).Scan(&id))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs, err := db.SMS().ClaimDue(cctx, "w2", ot0.Add(time.Second), ot0.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, "sms_b", cs[0].ID, "the locked message is skipped")
	require.Equal(t, 1, cs[0].Attempt)
	require.NotEmpty(t, cs[0].Body)
	got, err := kr.Open(cs[0].ID, cs[0].Body, cs[0].KeyID)
	require.NoError(t, err)
	require.Equal(t, "b", got)
}

func TestSMSInboxLatest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := db.SMSInbox()
		_, ok, err := in.Latest(ctx, "13800000000")
		require.NoError(t, err)
		require.False(t, ok)
		for i, id := range []string{"sms_1", "sms_2", "sms_1"} {
			require.NoError(t, in.Deliver(ctx, sms.InboxMessage{MessageID: id, Phone: "13800000000", Purpose: "p",
				Text: "text of " + id, ReceivedAt: ot0.Add(time.Duration(i) * time.Second)}))
		}
		require.NoError(t, in.Deliver(ctx, sms.InboxMessage{MessageID: "sms_3", Phone: "13900000000", Purpose: "p",
			Text: "other phone", ReceivedAt: ot0}))
		m, ok, err := in.Latest(ctx, "13800000000")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "sms_2", m.MessageID)
		require.Equal(t, "text of sms_2", m.Text)
		require.Equal(t, ot0.Add(time.Second), m.ReceivedAt)
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM sms_sandbox_inbox`).Scan(&n))
		require.Equal(t, 3, n, "a redelivery keeps one copy")
		_, err = db.SMS().Message(ctx, "sms_none")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
	})
}

func TestSMSDeleteOld(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		kr, err := sms.NewKeyring(make([]byte, 32))
		require.NoError(t, err)
		clock := paygate.NewManualClock(ot0)
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
			return sms.Enqueue(ctx, tx, kr, clock,
				sms.Message{ID: "sms_sent", Phone: "13800000000", Purpose: "t", Text: "a"},
				sms.Message{ID: "sms_pending", Phone: "13800000000", Purpose: "t", Text: "b"})
		}))
		ok, err := db.SMS().Finish(ctx, sms.Finish{ID: "sms_sent", Status: sms.StatusSent, At: ot0})
		require.NoError(t, err)
		require.True(t, ok)
		n, err := db.SMS().DeleteFinished(ctx, ot0, 10)
		require.NoError(t, err)
		require.Zero(t, n, "updated at, not before")
		n, err = db.SMS().DeleteFinished(ctx, ot0.Add(time.Second), 10)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		_, err = db.SMS().Message(ctx, "sms_pending")
		require.NoError(t, err, "pending messages stay")

		in := db.SMSInbox()
		for i, id := range []string{"sms_1", "sms_2"} {
			require.NoError(t, in.Deliver(ctx, sms.InboxMessage{MessageID: id, Phone: "13800000000", Purpose: "p",
				Text: "x", ReceivedAt: ot0.Add(time.Duration(i) * time.Hour)}))
		}
		n, err = in.DeleteBefore(ctx, ot0.Add(time.Minute), 10)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		m, ok, err := in.Latest(ctx, "13800000000")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "sms_2", m.MessageID)
	})
}
