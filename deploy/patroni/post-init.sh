#!/bin/sh
# Patroni bootstrap.post_init: run once, on the node that creates the cluster, with a
# superuser connection string as $1. Creates the issuer's role and database; the
# role's password comes from ISSUER_DB_PASSWORD in Patroni's environment.
set -eu
: "${ISSUER_DB_PASSWORD:?ISSUER_DB_PASSWORD must be set in Patroni's environment}"
psql -q -v ON_ERROR_STOP=1 -v pw="$ISSUER_DB_PASSWORD" "$1" <<'SQL'
CREATE ROLE issuer LOGIN PASSWORD :'pw';
CREATE DATABASE issuer OWNER issuer;
SQL
