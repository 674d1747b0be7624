-- Runs once, when the services' PostgreSQL starts on an empty data volume (docker-entrypoint-initdb.d).
-- Database per service: each service gets its own database, owned by its own role, so no service can
-- read another's tables. Prisma migrations (the `provision` service) create the tables inside them; since
-- PostgreSQL 15 the public schema belongs to the database owner, so the owner may create tables in it.
-- The passwords are for local development only; docker-compose.yml's *_DATABASE_URL values use them.
-- The service roles may replicate: the relay reads each outbox from the write-ahead log as its service's role.
-- The query database holds the views fed by events (src/query).
CREATE ROLE orders LOGIN REPLICATION PASSWORD 'orders';
CREATE ROLE inventory LOGIN REPLICATION PASSWORD 'inventory';
CREATE ROLE payments LOGIN REPLICATION PASSWORD 'payments';
CREATE ROLE shipping LOGIN REPLICATION PASSWORD 'shipping';
CREATE ROLE query LOGIN PASSWORD 'query';

CREATE DATABASE orders OWNER orders;
CREATE DATABASE inventory OWNER inventory;
CREATE DATABASE payments OWNER payments;
CREATE DATABASE shipping OWNER shipping;
CREATE DATABASE query OWNER query;

-- Only each database's owner (and the superuser) may connect to it.
REVOKE CONNECT ON DATABASE orders FROM PUBLIC;
REVOKE CONNECT ON DATABASE inventory FROM PUBLIC;
REVOKE CONNECT ON DATABASE payments FROM PUBLIC;
REVOKE CONNECT ON DATABASE shipping FROM PUBLIC;
REVOKE CONNECT ON DATABASE query FROM PUBLIC;
