package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAuthorizationPeriodSetting: --authorization-period and
// $PAYGATE_AUTHORIZATION_PERIOD set how long authorizations hold money;
// 7 days by default; anything but a positive whole number of seconds is
// refused naming the flag and the variable.
func TestAuthorizationPeriodSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{"default", nil, nil, 7 * 24 * time.Hour, false},
		{"environment", nil, map[string]string{"PAYGATE_AUTHORIZATION_PERIOD": "72h"}, 72 * time.Hour, false},
		{"flag over environment", []string{"--authorization-period", "30m"}, map[string]string{"PAYGATE_AUTHORIZATION_PERIOD": "72h"}, 30 * time.Minute, false},
		{"not a duration", []string{"--authorization-period", "a week"}, nil, 0, true},
		{"zero", []string{"--authorization-period", "0s"}, nil, 0, true},
		{"negative", []string{"--authorization-period", "-1h"}, nil, 0, true},
		{"fraction of a second", []string{"--authorization-period", "1.5s"}, nil, 0, true},
	}
	for _, c := range cases {
		cfg, _, err := parseConfig("serve", c.args, func(k string) string { return c.env[k] }, io.Discard, nil)
		if c.wantErr {
			require.Error(t, err, c.name)
			require.Contains(t, err.Error(), "--authorization-period", c.name)
			require.Contains(t, err.Error(), "PAYGATE_AUTHORIZATION_PERIOD", c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, cfg.AuthorizationPeriod, c.name)
	}
}
