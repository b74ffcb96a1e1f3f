// The real node `auth0` SDK's ManagementClient (v7) against Tessera's Management API v2: an m2m
// application created and granted with the CLI, then resource servers, clients, client grants,
// users and roles managed through the SDK, and what it created used for real (a client-credentials
// token for the new client).
//
// The SDK builds https://DOMAIN/api/v2 and https://DOMAIN/oauth/token itself. Against a plain
// http Tessera two options point it there, both documented ManagementClient options:
// - `fetch`: the fetch the SDK uses for API calls and for its token request; ours sends the
//   same request to http:// instead of https://;
// - `audience`: the SDK defaults to https://DOMAIN/api/v2/, the Management API's identifier is
//   the issuer's (`http://127.0.0.1:PORT/api/v2/`).
// Over https (`tessera dev --tls`, a real certificate) neither is needed: `domain` alone.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

import { ManagementClient } from 'auth0';

import { cli, startServer, tempDir, clientCredentialsToken } from './lib/tessera.mjs';

const require = createRequire(import.meta.url);
const SDK_VERSION = require('auth0/package.json').version;

const MANAGEMENT_SCOPES = [
  'read:resource_servers', 'create:resource_servers', 'update:resource_servers', 'delete:resource_servers',
  'read:clients', 'create:clients', 'update:clients', 'delete:clients', 'update:client_keys',
  'read:client_grants', 'create:client_grants', 'update:client_grants', 'delete:client_grants',
  'read:users', 'create:users', 'update:users', 'delete:users',
  'read:roles', 'create:roles', 'update:roles', 'delete:roles',
  'read:tenant_settings', 'update:tenant_settings',
].join(',');

describe(`auth0 ${SDK_VERSION} ManagementClient against Tessera's /api/v2`, () => {
  let dir;
  let server;
  let mgmt;
  let requested = [];
  before(async () => {
    dir = await tempDir();
    const databaseUrl = `sqlite://${dir.dir}/tessera.db`;
    // The server registers the Management API (<issuer>api/v2/) when it starts.
    server = await startServer({ databaseUrl });
    const audience = `${server.issuer}api/v2/`;
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);
    await cli(databaseUrl, ['grants', 'create', '--app', app.client_id, '--api', audience, '--scopes', MANAGEMENT_SCOPES]);
    const domain = new URL(server.baseUrl).host;
    mgmt = new ManagementClient({
      domain,
      clientId: app.client_id,
      clientSecret: app.client_secret,
      audience,
      fetch: (url, init) => {
        const target = String(url).replace(/^https:\/\//, 'http://');
        requested.push(`${init?.method ?? 'GET'} ${new URL(target).pathname}`);
        return fetch(target, init);
      },
    });
  });
  after(async () => {
    await server?.stop();
    await dir?.remove();
  });

  it('gets its token by client_credentials, then lists the resource servers with the system API', async () => {
    const page = await mgmt.resourceServers.list();
    const system = page.data.find((api) => api.identifier === `${server.issuer}api/v2/`);
    assert.ok(system, JSON.stringify(page.data));
    assert.equal(system.is_system, true);
    assert.equal(system.name, 'Auth0 Management API');
    assert.ok(requested.includes('POST /oauth/token'), requested.join(', '));
  });

  it('creates a resource server, a client and a client grant; the client gets a token', async () => {
    const api = await mgmt.resourceServers.create({
      name: 'Orders API',
      identifier: 'https://orders.example.com',
      scopes: [{ value: 'read:orders', description: 'Read orders' }, { value: 'write:orders', description: 'Write orders' }],
      signing_alg: 'RS256',
      token_lifetime: 3600,
    });
    assert.equal(api.identifier, 'https://orders.example.com');
    assert.equal(api.scopes.length, 2);
    assert.equal(api.is_system, false);
    const apis = await mgmt.resourceServers.list();
    assert.ok(apis.data.some((a) => a.id === api.id));

    const client = await mgmt.clients.create({ name: 'Orders worker', app_type: 'non_interactive' });
    assert.equal(client.name, 'Orders worker');
    assert.equal(client.grant_types.join(), 'client_credentials');
    assert.equal(typeof client.client_secret, 'string');
    const read = await mgmt.clients.get(client.client_id);
    assert.equal(read.client_id, client.client_id);
    assert.equal(read.client_secret, undefined, 'Tessera shows a secret only when it is made');
    const updated = await mgmt.clients.update(client.client_id, { name: 'Orders worker v2' });
    assert.equal(updated.name, 'Orders worker v2');

    const grant = await mgmt.clientGrants.create({
      client_id: client.client_id,
      audience: api.identifier,
      scope: ['read:orders'],
    });
    assert.deepEqual(grant.scope, ['read:orders']);
    const grants = await mgmt.clientGrants.list({ client_id: client.client_id });
    assert.deepEqual(grants.data.map((g) => g.id), [grant.id]);

    const token = await clientCredentialsToken(server.baseUrl, {
      clientId: client.client_id,
      clientSecret: client.client_secret,
      audience: api.identifier,
    });
    assert.equal(token.scope, 'read:orders');
  });

  it('refuses a bad body with a 400 the SDK surfaces, in Auth0\'s words', async () => {
    await assert.rejects(
      mgmt.clients.create({ name: 'x', app_type: 'spa', grant_types: ['client_credentials'] }),
      (error) => {
        assert.equal(error.statusCode, 400);
        assert.equal(error.body.errorCode, 'invalid_body');
        return true;
      },
    );
    await assert.rejects(mgmt.clients.get('no-such-client'), (error) => {
      assert.equal(error.statusCode, 404);
      assert.equal(error.body.errorCode, 'inexistent_client');
      return true;
    });
  });

  it('reads and updates the tenant settings (tenants.settings), default_audience included', async () => {
    assert.deepEqual(await mgmt.tenants.settings.get(), {});
    const api = await mgmt.resourceServers.create({ name: 'Default', identifier: 'https://default.example/' });
    const updated = await mgmt.tenants.settings.update({
      friendly_name: 'Acme', support_email: 'help@acme.example', enabled_locales: ['en'],
      flags: { enable_client_connections: false }, default_audience: api.identifier,
    });
    assert.equal(updated.friendly_name, 'Acme');
    assert.deepEqual(updated.flags, { enable_client_connections: false });
    const read = await mgmt.tenants.settings.get();
    assert.equal(read.default_audience, 'https://default.example/');
    await assert.rejects(mgmt.tenants.settings.update({ session_lifetime: -1 }), (error) => {
      assert.equal(error.statusCode, 400);
      assert.match(error.body.message, /session_lifetime/);
      return true;
    });
    await mgmt.tenants.settings.update({ default_audience: null });
    assert.equal((await mgmt.tenants.settings.get()).default_audience, undefined);
  });

  it('creates, finds, reads, updates and deletes a user', async () => {
    const password = 'a long enough passphrase 9';
    const user = await mgmt.users.create({
      connection: 'Username-Password-Authentication',
      email: 'sdk.user@example.com',
      password,
      email_verified: true,
      name: 'SDK User',
    });
    assert.match(user.user_id, /^auth0\|/);
    assert.equal(user.email, 'sdk.user@example.com');
    assert.equal(user.identities[0].provider, 'auth0');
    assert.ok(!JSON.stringify(user).includes(password));

    const all = await mgmt.users.list();
    assert.ok(all.data.some((u) => u.user_id === user.user_id));
    const byQuery = await mgmt.users.list({ q: 'email:"sdk.user@example.com"', search_engine: 'v3' });
    assert.deepEqual(byQuery.data.map((u) => u.user_id), [user.user_id]);
    const byEmail = await mgmt.users.listUsersByEmail({ email: 'sdk.user@example.com' });
    assert.deepEqual(byEmail.map((u) => u.user_id), [user.user_id]);
    const read = await mgmt.users.get(user.user_id);
    assert.equal(read.name, 'SDK User');

    const renamed = await mgmt.users.update(user.user_id, { name: 'Renamed User', nickname: 'renamed' });
    assert.equal(renamed.name, 'Renamed User');
    assert.equal(renamed.nickname, 'renamed');
    assert.equal(renamed.email, 'sdk.user@example.com');
    assert.equal((await mgmt.users.get(user.user_id)).nickname, 'renamed');

    // Metadata merges at the first level; null removes a member.
    const withMetadata = await mgmt.users.update(user.user_id, {
      user_metadata: { theme: 'dark' },
      app_metadata: { plan: 'pro' },
    });
    assert.deepEqual(withMetadata.user_metadata, { theme: 'dark' });
    const merged = await mgmt.users.update(user.user_id, { user_metadata: { lang: 'en', theme: null } });
    assert.deepEqual(merged.user_metadata, { lang: 'en' });
    assert.deepEqual(merged.app_metadata, { plan: 'pro' });
    const some = await mgmt.users.get(user.user_id, { fields: 'user_id,app_metadata', include_fields: true });
    assert.deepEqual(Object.keys(some).sort(), ['app_metadata', 'user_id']);
    assert.deepEqual(some.app_metadata, { plan: 'pro' });

    const blocked = await mgmt.users.update(user.user_id, { blocked: true });
    assert.equal(blocked.blocked, true);
    await mgmt.users.delete(user.user_id);
    await assert.rejects(mgmt.users.get(user.user_id), (error) => error.statusCode === 404);
  });

  it('pages users, applications and roles as the SDK pages them', async () => {
    const ids = [];
    for (let n = 0; n < 5; n++) {
      const user = await mgmt.users.create({
        connection: 'Username-Password-Authentication',
        email: `paged.${n}@example.com`,
        password: 'a long enough passphrase 9',
      });
      ids.push(user.user_id);
    }
    // getNextPage() until the SDK sees a short page: the prefix search, in email order.
    let page = await mgmt.users.list({ q: 'email:PAGED.*', search_engine: 'v3', per_page: 2 });
    const seen = page.data.map((u) => u.email);
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      seen.push(...page.data.map((u) => u.email));
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4].map((n) => `paged.${n}@example.com`));
    const newest = await mgmt.users.list({ sort: 'created_at:-1', per_page: 1, fields: 'user_id' });
    assert.equal(newest.data.length, 1);

    // What a0deploy sends: is_global on clients, type on roles.
    const clients = await mgmt.clients.list({ is_global: false, is_first_party: true, per_page: 1 });
    let all = clients.data.length;
    for (let p = clients; p.hasNextPage(); ) {
      p = await p.getNextPage();
      all += p.data.length;
    }
    assert.ok(all >= 2, `${all} applications`);
    // The global client ("All Applications"), alone.
    assert.deepEqual((await mgmt.clients.list({ is_global: true })).data.map((c) => [c.name, c.global]), [['All Applications', true]]);
    await mgmt.roles.create({ name: 'paged-role' });
    const roles = await mgmt.roles.list({ type: 'tenant', name_filter: 'PAGED' });
    assert.deepEqual(roles.data.map((r) => r.name), ['paged-role']);
    for (const id of ids) await mgmt.users.delete(id);
  });

  it('manages roles and their permissions and assigns them to users (both ways)', async () => {
    const identifier = 'https://inventory.example.com';
    await mgmt.resourceServers.create({
      name: 'Inventory',
      identifier,
      scopes: [{ value: 'read:stock', description: 'Read stock' }],
      enforce_policies: true,
      token_dialect: 'access_token_authz',
    });
    const role = await mgmt.roles.create({ name: 'Stock reader', description: 'Reads stock' });
    assert.match(role.id, /^rol_/);
    assert.equal(role.name, 'Stock reader');
    const roles = await mgmt.roles.list();
    assert.ok(roles.data.some((r) => r.id === role.id), JSON.stringify(roles.data));
    const filtered = await mgmt.roles.list({ name_filter: 'stock' });
    assert.deepEqual(filtered.data.map((r) => r.id), [role.id]);
    const updated = await mgmt.roles.update(role.id, { description: 'Reads the stock' });
    assert.equal(updated.description, 'Reads the stock');
    assert.equal((await mgmt.roles.get(role.id)).description, 'Reads the stock');
    await assert.rejects(mgmt.roles.create({ name: 'Stock reader' }), (error) => error.statusCode === 409);

    await mgmt.roles.permissions.add(role.id, {
      permissions: [{ resource_server_identifier: identifier, permission_name: 'read:stock' }],
    });
    const permissions = await mgmt.roles.permissions.list(role.id);
    assert.deepEqual(permissions.data, [{
      permission_name: 'read:stock',
      description: 'Read stock',
      resource_server_name: 'Inventory',
      resource_server_identifier: identifier,
    }]);
    await assert.rejects(
      mgmt.roles.permissions.add(role.id, {
        permissions: [{ resource_server_identifier: identifier, permission_name: 'write:stock' }],
      }),
      (error) => error.statusCode === 404,
    );

    const user = await mgmt.users.create({
      connection: 'Username-Password-Authentication',
      email: 'stock.reader@example.com',
      password: 'a long enough passphrase 10',
    });
    await mgmt.users.roles.assign(user.user_id, { roles: [role.id] });
    const userRoles = await mgmt.users.roles.list(user.user_id);
    assert.deepEqual(userRoles.data.map((r) => r.name), ['Stock reader']);
    const members = await mgmt.roles.users.list(role.id);
    assert.deepEqual(members.data.map((u) => u.user_id), [user.user_id]);
    const effective = await mgmt.users.permissions.list(user.user_id);
    assert.deepEqual(effective.data.map((p) => p.permission_name), ['read:stock']);

    await mgmt.users.roles.delete(user.user_id, { roles: [role.id] });
    assert.deepEqual((await mgmt.users.roles.list(user.user_id)).data, []);
    await mgmt.roles.users.assign(role.id, { users: [user.user_id] });
    assert.equal((await mgmt.users.roles.list(user.user_id)).data.length, 1);
    await mgmt.roles.permissions.delete(role.id, {
      permissions: [{ resource_server_identifier: identifier, permission_name: 'read:stock' }],
    });
    assert.deepEqual((await mgmt.roles.permissions.list(role.id)).data, []);

    await mgmt.roles.delete(role.id);
    await assert.rejects(mgmt.roles.get(role.id), (error) => {
      assert.equal(error.statusCode, 404);
      assert.equal(error.body.errorCode, 'inexistent_role');
      return true;
    });
    await mgmt.users.delete(user.user_id);
  });
});
