-- One database and one login per service, so no service can read another's tables.
-- The official postgres image runs this once, when its data directory is still empty
-- (docker-entrypoint-initdb.d); `docker compose down -v` starts over.
-- The passwords are for the local docker compose setup only; Kubernetes takes its database URLs
-- from the notify-secrets Secret (deploy/k8s/base/secrets.example.env).

CREATE ROLE invitations LOGIN PASSWORD 'invitations';
CREATE DATABASE invitations OWNER invitations;

CREATE ROLE reminders LOGIN PASSWORD 'reminders';
CREATE DATABASE reminders OWNER reminders;

CREATE ROLE digest LOGIN PASSWORD 'digest';
CREATE DATABASE digest OWNER digest;

CREATE ROLE ingest LOGIN PASSWORD 'ingest';
CREATE DATABASE ingest OWNER ingest;

CREATE ROLE responses LOGIN PASSWORD 'responses';
CREATE DATABASE responses OWNER responses;
