package issuance_test

import "github.com/metrum/licensing/internal/issuance"

func issuanceInput(customerID string) issuance.EntitlementInput {
	return issuance.EntitlementInput{CustomerID: customerID, Template: "enterprise-annual"}
}
