package issuance_test

import "github.com/metrum/licensing/internal/entitlements"

func issuanceInput(customerID string) entitlements.EntitlementInput {
	return entitlements.EntitlementInput{CustomerID: customerID, Template: "enterprise-annual"}
}
