package staff

import (
	"context"

	"github.com/metrum/licensing/internal/entitlements"
)

// The dashboard's usage line reaches its component through the request's context, so
// the dashboard page itself carries one call (@UsageAlertsLine()) and no field of it.
type usageAlertsKey struct{}

// UsageAlertsView is the dashboard's usage line, or why it could not be read.
type UsageAlertsView struct {
	Alerts *entitlements.UsageAlerts
	Err    string
}

// WithUsageAlerts puts the dashboard's usage line into ctx for UsageAlertsLine.
func WithUsageAlerts(ctx context.Context, v UsageAlertsView) context.Context {
	return context.WithValue(ctx, usageAlertsKey{}, v)
}

func usageAlertsFrom(ctx context.Context) (UsageAlertsView, bool) {
	v, ok := ctx.Value(usageAlertsKey{}).(UsageAlertsView)
	return v, ok
}
