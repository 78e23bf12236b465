package main

import (
	"context"
	"fmt"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const customerHelp = `Usage: issuer customer <create|update|list|token> [flags]

  create     add a customer (a licensee)
  update     correct a customer's name or email (then 'issuer license replace' to re-issue)
  list       list customers by name
  token      create, list or revoke a customer's API tokens (issuer customer token --help)
  downloads  every delivery to the customer: license files, bundles, the verifier
`

func cmdCustomer(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "customer", args, map[string]cmdFunc{"create": customerCreate, "update": customerUpdate, "list": customerList, "token": cmdCustomerToken,
		"downloads": customerDownloads}, customerHelp)
}

func customerCreate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer create", "customer create --name NAME [--email EMAIL] [--as STAFF] [--json]",
		"Adds a customer. Prints its ID (cus_…), which entitlements refer to.")
	name := fs.String("name", "", "customer display name (required)")
	email := fs.String("email", "", "contact email")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	svc, err := a.api(*as)
	if err != nil {
		return err
	}
	c := &entitlements.Customer{Name: *name, Email: *email}
	if err := svc.CreateCustomer(ctx, c); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(customerJSON(c))
	}
	fmt.Fprintf(a.stdout, "created customer %s (%s)\n", c.ID, c.Name)
	return nil
}

func customerUpdate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer update", "customer update --id cus_… [--name NAME] [--email EMAIL] [--as STAFF] [--json]",
		`Corrects a customer's name or email. Issued licenses keep the name they were signed
with: issue a replacement ('issuer license replace') to deliver the correction.`)
	id := fs.String("id", "", "customer ID (required)")
	name := fs.String("name", "", "new display name")
	email := fs.String("email", "", "new contact email")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	c, err := svc.UpdateCustomer(ctx, *id, *name, *email)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(customerJSON(c))
	}
	fmt.Fprintf(a.stdout, "updated customer %s (%s)\n", c.ID, c.Name)
	return nil
}

func customerList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer list", "customer list [--page N] [--json]", "Lists customers by name, 50 a page.")
	pg := fs.Int("page", 1, "page number")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ListCustomers(ctx, (*pg-1)*50, 50)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.Customer]{
		empty:  "no customers yet: add one with `issuer customer create --name NAME`",
		header: "ID\tNAME\tEMAIL",
		row:    func(c *entitlements.Customer) string { return fmt.Sprintf("%s\t%s\t%s", c.ID, c.Name, c.Email) },
		json:   customerJSON, full: len(list) == 50,
		more: func(*entitlements.Customer) string { return fmt.Sprintf("--page %d", *pg+1) },
	})
}

func customerJSON(c *entitlements.Customer) map[string]any {
	return map[string]any{"id": c.ID, "name": c.Name, "email": c.Email, "created_at": verify.FormatTime(c.CreatedAt)}
}

func customerDownloads(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer downloads", "customer downloads --id cus_… [--json]",
		`Lists every delivery to a customer, newest first: license files, summaries,
checklists and bundles (with the license) and the verifier release (with the file
name), who fetched it (portal user, API token or staff) and from which address. The
evidence of delivery.`)
	id := fs.String("id", "", "customer ID (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	if *id == "" {
		return entitlements.Invalid(map[string]string{"id": "the customer's ID (cus_…)"})
	}
	list, err := svc.CustomerDownloads(ctx, *id)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.Download]{
		empty:  "nothing was delivered to " + *id + " yet",
		header: "AT\tWHAT\tLICENSE OR FILE\tBY\tFROM",
		row: func(d *entitlements.Download) string {
			subject := d.LicenseID
			if d.What == entitlements.WhatRelease {
				subject = d.FileName
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s %s\t%s", verify.FormatTime(d.At), d.What, subject, d.ActorKind, d.Actor, d.ClientAddr)
		},
		json: func(d *entitlements.Download) map[string]any {
			return map[string]any{"at": verify.FormatTime(d.At), "what": d.What, "license_id": d.LicenseID, "file_name": d.FileName,
				"product": d.Product, "actor_kind": d.ActorKind, "actor": d.Actor, "client_addr": d.ClientAddr}
		},
	})
}
