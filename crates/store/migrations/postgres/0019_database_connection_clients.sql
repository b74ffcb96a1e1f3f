-- Database connections are enabled per application, as upstream ones are: the default
-- database connection, so far enabled for every application without rows, gets a row for
-- each application there is (new applications get one when created).
INSERT INTO connection_clients (tenant_id, connection_id, client_id)
SELECT tenant_id, 'con_TesseraDatabase1', client_id FROM clients;
