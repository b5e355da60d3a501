package payout

import (
	"context"
	"strconv"
	"strings"

	"paygate"
)

func cursorOf(seq int) string { return strconv.Itoa(seq) }

// parsePage validates a page's cursor (a NextCursor: the last seq seen)
// and limit (0 means DefaultPage).
func parsePage(cursor string, limit int) (int, int, error) {
	switch {
	case limit == 0:
		limit = DefaultPage
	case limit < 0 || limit > MaxPage:
		return 0, 0, paygate.EField(paygate.CodeInvalidArgument, "limit", "a page holds 1 to %d items", MaxPage)
	}
	after := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 1 || n > MaxItems || len(cursor) > 5 {
			return 0, 0, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor; start again from the first page")
		}
		after = n
	}
	return after, limit, nil
}

func (s *Service) batchPage(ctx context.Context, b Batch, cursor string, limit int) (BatchPage, error) {
	after, limit, err := parsePage(cursor, limit)
	if err != nil {
		return BatchPage{}, err
	}
	items, err := s.store.BatchItems(ctx, b.ID, after, limit+1)
	if err != nil {
		return BatchPage{}, err
	}
	return s.page(b, items, after, limit), nil
}

func batchNotFound() error { return paygate.E(paygate.CodeNotFound, "payout batch not found") }

// GetBatch returns the merchant's batch with one page of its items, in
// batch order: cursor "" for the first page or a BatchPage.NextCursor;
// limit 0 means DefaultPage, at most MaxPage. Another merchant's batch is
// CodeNotFound, like a missing one. Errors: CodeNotFound,
// CodeInvalidArgument (bad cursor or limit).
func (s *Service) GetBatch(ctx context.Context, merchantID, id, cursor string, limit int) (BatchPage, error) {
	if !strings.HasPrefix(id, PrefixBatch) || len(id) > 64 {
		return BatchPage{}, batchNotFound()
	}
	b, err := s.store.Batch(ctx, merchantID, id)
	if err != nil {
		return BatchPage{}, err
	}
	return s.batchPage(ctx, b, cursor, limit)
}

// GetBatchByOutBatchNo is GetBatch by the merchant's out_batch_no.
// Errors: CodeNotFound, CodeInvalidArgument (bad cursor or limit).
func (s *Service) GetBatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo, cursor string, limit int) (BatchPage, error) {
	if checkOutNo("out_batch_no", outBatchNo) != nil {
		return BatchPage{}, batchNotFound()
	}
	b, err := s.store.BatchByOutBatchNo(ctx, merchantID, outBatchNo)
	if err != nil {
		return BatchPage{}, err
	}
	return s.batchPage(ctx, b, cursor, limit)
}

// GetDetail returns the merchant's accepted item with the out_detail_no
// (a REJECTED line did not take its number; find it in its batch).
// Errors: CodeNotFound.
func (s *Service) GetDetail(ctx context.Context, merchantID, outDetailNo string) (Item, error) {
	if checkOutNo("out_detail_no", outDetailNo) != nil {
		return Item{}, paygate.E(paygate.CodeNotFound, "payout item not found")
	}
	return s.store.ItemByOutDetailNo(ctx, merchantID, outDetailNo)
}
