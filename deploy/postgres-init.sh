#!/bin/sh
# Run once by the postgres image when its data volume is empty (/docker-entrypoint-initdb.d/).
# Creates the two roles the application uses, neither a superuser:
#   contactcenter      owns the database and its tables; only `manage.py migrate` connects as it
#                      (DATABASE_MIGRATE_URL), and grants the runtime role what it needs.
#   contactcenter_app  the runtime role of web, worker and beat (DATABASE_URL): reads and writes
#                      the tables, only reads and appends to the audit trail, owns nothing, so it
#                      cannot disable the audit trail's trigger.
# The image's superuser (POSTGRES_USER=postgres) is for the database administrator only.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$CONTACTCENTER_OWNER_PASSWORD" \
    -v app_password="$CONTACTCENTER_APP_PASSWORD" <<'SQL'
CREATE ROLE contactcenter LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE contactcenter_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    PASSWORD :'app_password';
CREATE DATABASE contactcenter OWNER contactcenter;
REVOKE ALL ON DATABASE contactcenter FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE contactcenter TO contactcenter_app;
SQL

# PostgreSQL 15+ gives PUBLIC no CREATE on the public schema; the database's owner owns it.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname contactcenter <<'SQL'
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
