package policy

import (
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/stretchr/testify/require"

	authv1 "github.com/switchyard-io/switchyard/proto/switchyard/auth/v1"
)

// A user JWT's src, allowed_connection_types and times, as nats-server
// applies them.
func TestCheckUserLimits(t *testing.T) {
	utc := time.Date(2026, 11, 23, 14, 30, 0, 0, time.UTC)
	client := &authv1.ClientInfo{Host: "10.1.2.3"}
	check := func(l jwt.UserPermissionLimits, c *authv1.ClientInfo) (time.Time, error) {
		return checkUserLimits(&l, c, utc)
	}

	_, err := check(jwt.UserPermissionLimits{}, client)
	require.NoError(t, err, "no restrictions")

	var l jwt.UserPermissionLimits
	l.Src = jwt.CIDRList{"192.168.0.0/16", "10.0.0.0/8"}
	_, err = check(l, client)
	require.NoError(t, err)
	_, err = check(l, &authv1.ClientInfo{Host: "127.0.0.1"})
	require.ErrorContains(t, err, "not in the JWT's src")
	_, err = check(l, &authv1.ClientInfo{Host: "not-an-ip"})
	require.Error(t, err)

	l = jwt.UserPermissionLimits{}
	l.AllowedConnectionTypes = jwt.StringList{jwt.ConnectionTypeWebsocket}
	_, err = check(l, client)
	require.ErrorContains(t, err, "connection type STANDARD", "a TCP client (no type given is STANDARD)")
	_, err = check(l, &authv1.ClientInfo{Host: "10.1.2.3", ConnectionType: jwt.ConnectionTypeWebsocket})
	require.NoError(t, err)

	l = jwt.UserPermissionLimits{}
	l.Locale = "UTC"
	l.Times = []jwt.TimeRange{{Start: "08:00:00", End: "12:00:00"}, {Start: "14:00:00", End: "15:00:00"}}
	end, err := check(l, client)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC), end.UTC(), "the window in force ends at 15:00")
	l.Times = []jwt.TimeRange{{Start: "08:00:00", End: "12:00:00"}}
	_, err = check(l, client)
	require.ErrorContains(t, err, "outside the JWT's allowed times")
	// A range over midnight, seen from both of its sides.
	l.Times = []jwt.TimeRange{{Start: "22:00:00", End: "02:00:00"}}
	end, err = checkUserLimits(&l, client, time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), end.UTC())
	end, err = checkUserLimits(&l, client, time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), end.UTC())
	_, err = check(l, client)
	require.Error(t, err, "14:30 is outside 22:00-02:00")
	// The locale's zone: 14:30 UTC is 09:30 in New York.
	l.Locale = "America/New_York"
	l.Times = []jwt.TimeRange{{Start: "09:00:00", End: "10:00:00"}}
	_, err = check(l, client)
	require.NoError(t, err)
	l.Locale = "Nowhere/Special"
	_, err = check(l, client)
	require.ErrorContains(t, err, "locale")
	l.Locale = "UTC"
	l.Times = []jwt.TimeRange{{Start: "nine", End: "10:00:00"}}
	_, err = check(l, client)
	require.Error(t, err, "an unreadable range admits no one")
}
