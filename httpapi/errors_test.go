package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
)

// wantStatus is the documented mapping; TestStatusCoversEveryCode checks it
// lists every code the root package declares.
var wantStatus = map[paygate.Code]int{
	paygate.CodeInvalidArgument:   400,
	paygate.CodeAmountNotPositive: 400,
	paygate.CodeUnknownCurrency:   400,
	paygate.CodeCurrencyMismatch:  400,
	paygate.CodeUnauthenticated:   401,
	paygate.CodeForbidden:         403,
	paygate.CodeNotFound:          404,
	paygate.CodeAccountNotFound:   404,
	paygate.CodeMethodNotAllowed:  405,
	paygate.CodeIDConflict:        409,
	paygate.CodeOutTradeNoUsed:    409,
	paygate.CodeOutRefundNoUsed:   409,
	paygate.CodeOutBatchNoUsed:    409,
	paygate.CodeConflict:          409,
	paygate.CodeAlreadyResolved:   409,
	paygate.CodeHoldExpired:       409,
	paygate.CodeAccountClosed:     409,
	paygate.CodeTooLarge:          413,
	paygate.CodeInsufficientFunds: 422,
	paygate.CodeLimitExceeded:     422,
	paygate.CodeOverflow:          422,
	paygate.CodeUnavailable:       503,
	paygate.CodeInternal:          500,
	"SOMETHING_NEW":               500,
	"":                            500,
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for code, want := range wantStatus {
		t.Run(string(code), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, Status(code))
		})
	}
}

// TestStatusCoversEveryCode reads the root package's source so that a code
// added there without a status here fails the build's tests.
func TestStatusCoversEveryCode(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../errors.go", nil, 0)
	require.NoError(t, err)
	var declared []paygate.Code
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || vs.Type == nil {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
			return true
		}
		for _, v := range vs.Values {
			lit, ok := v.(*ast.BasicLit)
			require.True(t, ok, "code constants are string literals")
			var s string
			require.NoError(t, json.Unmarshal([]byte(lit.Value), &s))
			declared = append(declared, paygate.Code(s))
		}
		return true
	})
	require.GreaterOrEqual(t, len(declared), 19, "the parser found the code constants")
	for _, c := range declared {
		_, ok := statuses[c]
		require.True(t, ok, "paygate.Code %s has no HTTP status in httpapi.statuses", c)
		require.Contains(t, wantStatus, c, "wantStatus must document %s", c)
	}
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{
			name:       "code and message",
			err:        paygate.E(paygate.CodeInsufficientFunds, "not enough money"),
			wantStatus: 422,
			wantBody:   `{"code":"INSUFFICIENT_FUNDS","message":"not enough money"}`,
		},
		{
			name:       "field becomes detail",
			err:        paygate.EField(paygate.CodeAmountNotPositive, "amount", "amount must be positive"),
			wantStatus: 400,
			wantBody:   `{"code":"AMOUNT_NOT_POSITIVE","message":"amount must be positive","detail":{"field":"amount"}}`,
		},
		{
			name:       "wrapped with %w keeps the code, hides the wrapper's text",
			err:        fmt.Errorf("payment: load order ord_1 from table secret_orders: %w", paygate.E(paygate.CodeNotFound, "order not found")),
			wantStatus: 404,
			wantBody:   `{"code":"NOT_FOUND","message":"order not found"}`,
		},
		{
			name:       "cause never shown",
			err:        &paygate.Error{Code: paygate.CodeUnavailable, Message: "database unavailable", Err: errors.New("dial tcp 10.0.0.5:5432: password=hunter2")},
			wantStatus: 503,
			wantBody:   `{"code":"UNAVAILABLE","message":"database unavailable"}`,
		},
		{
			name:       "plain error is internal",
			err:        errors.New("pq: relation secret_table does not exist"),
			wantStatus: 500,
			wantBody:   `{"code":"INTERNAL","message":"internal error"}`,
		},
		{
			name:       "internal code with leaky message",
			err:        paygate.E(paygate.CodeInternal, "sql: SELECT * FROM secret_table"),
			wantStatus: 500,
			wantBody:   `{"code":"INTERNAL","message":"internal error"}`,
		},
		{
			name:       "internal wrapper",
			err:        paygate.Internal(errors.New("nil map in secret code")),
			wantStatus: 500,
			wantBody:   `{"code":"INTERNAL","message":"internal error"}`,
		},
		{
			name:       "unknown code is internal",
			err:        paygate.E("NOT_A_CODE", "leaky text"),
			wantStatus: 500,
			wantBody:   `{"code":"INTERNAL","message":"internal error"}`,
		},
		{
			name:       "internal with field shows no field",
			err:        paygate.EField(paygate.CodeInternal, "secret_column", "x"),
			wantStatus: 500,
			wantBody:   `{"code":"INTERNAL","message":"internal error"}`,
		},
		{
			name:       "nil is internal",
			err:        nil,
			wantStatus: 500,
			wantBody:   `{"code":"INTERNAL","message":"internal error"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			WriteError(w, tt.err)
			require.Equal(t, tt.wantStatus, w.Code)
			require.JSONEq(t, tt.wantBody, w.Body.String())
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			require.NotContains(t, w.Body.String(), "secret")
			require.NotContains(t, w.Body.String(), "hunter2")
		})
	}
}

func TestWriteErrorRecordsCauseForTheLog(t *testing.T) {
	t.Parallel()
	rec := &recorder{ResponseWriter: httptest.NewRecorder()}
	cause := errors.New("disk on fire")
	WriteError(rec, paygate.Internal(cause))
	require.ErrorIs(t, rec.err, cause)
	require.Equal(t, http.StatusInternalServerError, rec.status)
}
