// The real `auth0` SDK's ManagementClient against a running Tessera: a machine-to-machine
// application granted `scopes` on the Management API (<issuer>api/v2/), and the client the SDK
// makes for it. The SDK's documented `fetch` option sends its https:// requests to the
// plain-http Tessera; `audience` names the Management API's identifier.

import { ManagementClient } from 'auth0';

import { cli } from './tessera.mjs';

/** A ManagementClient of a new application holding `scopes` (comma-separated). */
export async function managementClient(server, databaseUrl, scopes) {
  const audience = `${server.issuer}api/v2/`;
  const automation = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);
  await cli(databaseUrl, ['grants', 'create', '--app', automation.client_id, '--api', audience, '--scopes', scopes]);
  return new ManagementClient({
    domain: new URL(server.baseUrl).host,
    clientId: automation.client_id,
    clientSecret: automation.client_secret,
    audience,
    fetch: (url, init) => fetch(String(url).replace(/^https:\/\//, 'http://'), init),
  });
}
