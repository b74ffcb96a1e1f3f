// auth0-deploy-cli (a0deploy), the tool teams keep an Auth0 tenant in git with, unmodified
// against `tessera dev --tls`: only AUTH0_DOMAIN, the client id and secret of an m2m application
// granted the Management API, and NODE_EXTRA_CA_CERTS for the dev CA.
//
// export → an unchanged re-import → a re-export equal to the first; a modified import (a new
// API with scopes, an SPA, an m2m application with its grant, a role with permissions, tenant
// settings, the verification email's template) whose re-export is the modified file; AUTH0_ALLOW_DELETE=true with the first export,
// which removes what the modified import added. Every resource type Tessera does not serve is
// read as "none" and skipped: no run logs an error.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import yaml from 'js-yaml';

import { startDev } from './lib/dev.mjs';
import { AUDIENCE, cli, tempDir, tesseraBin } from './lib/tessera.mjs';
import { httpsRequest } from './lib/tls.mjs';

const require = createRequire(import.meta.url);
const A0DEPLOY = path.join(path.dirname(require.resolve('auth0-deploy-cli/package.json')), 'lib', 'index.js');
const A0DEPLOY_VERSION = require('auth0-deploy-cli/package.json').version;

/** Runs `a0deploy <args>` with NODE_EXTRA_CA_CERTS; resolves its output, rejects on failure. */
function a0deploy(args, caFile) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [A0DEPLOY, ...args], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, NO_COLOR: '1', FORCE_COLOR: '0' },
      timeout: 240000,
      killSignal: 'SIGKILL',
      maxBuffer: 16 << 20,
    }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error) reject(new Error(`a0deploy ${args.join(' ')} failed (${error.code ?? error.signal}):\n${output}`));
      else resolve(output);
    });
  });
}

/** The lines a0deploy logged at level error (it prints `- error:`). */
function errorLines(output) {
  // eslint-disable-next-line no-control-regex
  return output.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((line) => /- error:/.test(line));
}

async function readTenant(dir) {
  return yaml.load(await readFile(path.join(dir, 'tenant.yaml'), 'utf8'));
}

const byName = (list, name) => (list ?? []).find((item) => item.name === name);

/** The tenant with every list of named objects (and the client grants) in one order:
 * a0deploy writes records sorted, a file edited by hand need not be. */
function normalized(tenant) {
  const key = (item) => item.name ?? `${item.client_id} ${item.audience}`;
  const visit = (value) => {
    if (Array.isArray(value)) {
      const items = value.map(visit);
      return items.every((item) => item && typeof item === 'object' && !Array.isArray(item))
        ? items.sort((a, b) => key(a).localeCompare(key(b)))
        : items;
    }
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, visit(v)]));
    }
    return value;
  };
  return visit(tenant);
}

describe(`auth0-deploy-cli ${A0DEPLOY_VERSION} against tessera dev --tls`, () => {
  let dev;
  let work;
  let config;
  let databaseUrl;
  let management;
  before(async () => {
    dev = await startDev({ tls: true });
    work = await tempDir('tessera-a0deploy-');
    databaseUrl = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    const managementAudience = `${dev.server}/api/v2/`;
    // Every scope the Management API defines.
    const managementApi = await cli(databaseUrl, ['apis', 'show', managementAudience]);
    const scopes = managementApi.scopes.map((scope) => scope.value).join(',');
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Deploy CLI', '--type', 'm2m']);
    await cli(databaseUrl, ['grants', 'create', '--app', app.client_id, '--api', managementAudience, '--scopes', scopes]);
    config = path.join(work.dir, 'config.json');
    await writeFile(config, JSON.stringify({
      AUTH0_DOMAIN: new URL(dev.server).host,
      AUTH0_CLIENT_ID: app.client_id,
      AUTH0_CLIENT_SECRET: app.client_secret,
      AUTH0_ALLOW_DELETE: false,
    }));
    // The Management API checks tokens against the grant as it is now: wait until the
    // server sees the new grant (the CLI wrote it to the database beside it).
    const token = await httpsRequest(`${dev.server}/oauth/token`, {
      caFile: dev.caFile,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, audience: managementAudience,
      }),
    });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    management = (pathAndQuery, { method = 'GET' } = {}) => httpsRequest(`${dev.server}/api/v2${pathAndQuery}`, {
      caFile: dev.caFile,
      method,
      headers: { authorization: `Bearer ${token.body.access_token}` },
    });
  });
  after(async () => {
    await dev?.stop();
    await work?.remove();
  });

  async function exportTo(name) {
    const dir = path.join(work.dir, name);
    await mkdir(dir, { recursive: true });
    const output = await a0deploy(['export', '-c', config, '-f', 'yaml', '-o', dir], dev.caFile);
    assert.deepEqual(errorLines(output), [], output);
    return readTenant(dir);
  }

  async function importFrom(tenant, name, { allowDelete = false, files = {} } = {}) {
    const dir = path.join(work.dir, name);
    await mkdir(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), text);
    }
    const file = path.join(dir, 'tenant.yaml');
    await writeFile(file, yaml.dump(tenant));
    let configFile = config;
    if (allowDelete) {
      configFile = path.join(dir, 'config.json');
      const settings = JSON.parse(await readFile(config, 'utf8'));
      await writeFile(configFile, JSON.stringify({ ...settings, AUTH0_ALLOW_DELETE: true }));
    }
    const output = await a0deploy(['import', '-c', configFile, '-i', file], dev.caFile);
    assert.deepEqual(errorLines(output), [], output);
    assert.match(output, /Import Successful/);
    return output;
  }

  let first;

  it('exports the tenant: APIs, applications, the database connection, roles; no error', async () => {
    first = await exportTo('export-1');
    const api = byName(first.resourceServers, 'Quickstart API');
    assert.ok(api, JSON.stringify(first.resourceServers));
    assert.equal(api.identifier, AUDIENCE);
    assert.deepEqual(api.scopes.map((s) => s.value).sort(), ['read:messages', 'write:messages']);
    // The Management API is a system API: a0deploy leaves it alone by its name.
    assert.equal(byName(first.resourceServers, 'Auth0 Management API'), undefined);
    const spa = byName(first.clients, 'Quickstart SPA');
    assert.equal(spa.app_type, 'spa');
    assert.ok(byName(first.clients, 'Deploy CLI'));
    const database = byName(first.databases, 'Username-Password-Authentication');
    assert.equal(database.strategy, 'auth0');
    // The applications enabled for it, by name (Tessera's own dashboard is not listed).
    assert.deepEqual([...database.enabled_clients].sort(), ['Deploy CLI', 'Quickstart SPA']);
    assert.deepEqual(byName(first.roles, 'reader').permissions, [
      { permission_name: 'read:messages', resource_server_identifier: AUDIENCE },
    ]);
    // Types Tessera does not have are exported as none.
    for (const type of ['actions', 'organizations', 'logStreams', 'customDomains', 'forms', 'flows']) {
      assert.deepEqual(first[type], [], type);
    }
    assert.equal(first.attackProtection.bruteForceProtection.enabled, true);
  });

  it('an unchanged re-import succeeds, and the re-export equals the first', async () => {
    await importFrom(first, 'reimport');
    const again = await exportTo('export-2');
    assert.deepEqual(normalized(again), normalized(first));
  });

  let modified;

  it('a modified import creates an API, an SPA, an m2m application with its grant, a role, tenant settings', async () => {
    modified = structuredClone(first);
    const ordersApi = 'https://orders.example.com/api';
    modified.resourceServers.push({
      ...byName(first.resourceServers, 'Quickstart API'),
      name: 'Orders API',
      identifier: ordersApi,
      scopes: [
        { value: 'read:orders', description: 'Read orders' },
        { value: 'write:orders', description: 'Write orders' },
      ],
      token_lifetime: 3600,
      token_lifetime_for_web: 3600,
    });
    const spa = byName(first.clients, 'Quickstart SPA');
    modified.clients.push({
      ...spa,
      name: 'Orders SPA',
      callbacks: ['https://orders.example.com/callback'],
      allowed_logout_urls: ['https://orders.example.com/'],
      web_origins: ['https://orders.example.com'],
    });
    modified.clients.push({
      ...byName(first.clients, 'Deploy CLI'),
      name: 'Orders Worker',
    });
    modified.clientGrants = [
      ...(modified.clientGrants ?? []),
      { client_id: 'Orders Worker', audience: ordersApi, scope: ['read:orders'] },
    ];
    modified.roles.push({
      name: 'orders-clerk',
      description: 'Reads and writes orders',
      permissions: [
        { permission_name: 'read:orders', resource_server_identifier: ordersApi },
        { permission_name: 'write:orders', resource_server_identifier: ordersApi },
      ],
    });
    modified.tenant = { ...modified.tenant, friendly_name: 'Orders Inc.', support_email: 'support@orders.example.com', default_audience: ordersApi };
    const verifyEmail = '<p>Welcome to {{ friendly_name }}: <a href="{{ url }}">verify {{ user.email }}</a></p>';
    modified.emailTemplates = [{
      template: 'verify_email',
      body: './emailTemplates/verify_email.html',
      enabled: true,
      from: 'Orders <no-reply@orders.example.com>',
      subject: 'Verify your address',
      syntax: 'liquid',
      urlLifetimeInSeconds: 86400,
    }];
    const connectionSecret = 'acme-upstream-secret-5e2d';
    modified.connections = [...(modified.connections ?? []), {
      name: 'acme-sso',
      display_name: 'Acme SSO',
      strategy: 'oidc',
      options: {
        type: 'back_channel',
        discovery_url: 'https://login.acme.example/.well-known/openid-configuration',
        client_id: 'tessera-at-acme',
        client_secret: connectionSecret,
        scopes: 'openid profile email',
      },
      enabled_clients: ['Orders SPA'],
    }];
    const output = await importFrom(modified, 'modified', { files: { 'emailTemplates/verify_email.html': verifyEmail } });
    assert.doesNotMatch(output, new RegExp(connectionSecret));

    // What the server now holds, through the Management API.
    const apis = await management(`/resource-servers?identifiers=${encodeURIComponent(ordersApi)}`);
    assert.equal(apis.status, 200);
    assert.deepEqual(apis.body[0].scopes.map((s) => s.value).sort(), ['read:orders', 'write:orders']);
    const settings = await management('/tenants/settings');
    assert.equal(settings.body.default_audience, ordersApi);
    assert.equal(settings.body.friendly_name, 'Orders Inc.');

    const template = await management('/email-templates/verify_email');
    assert.equal(template.status, 200, JSON.stringify(template.body));
    assert.equal(template.body.body, verifyEmail);
    assert.equal(template.body.enabled, true);

    // The connection, enabled for the application the file names; its secret sealed.
    const connections = await management('/connections?name=acme-sso');
    assert.equal(connections.status, 200, JSON.stringify(connections.body));
    const [acme] = connections.body;
    assert.equal(acme.strategy, 'oidc');
    assert.equal(acme.options.client_secret, undefined);
    const ordersSpa = (await management('/clients?fields=client_id,name&include_fields=true')).body
      .find((c) => c.name === 'Orders SPA');
    const enabled = await management(`/connections/${acme.id}/clients`);
    assert.deepEqual(enabled.body, { clients: [{ client_id: ordersSpa.client_id }] });

    const again = await exportTo('export-3');
    assert.doesNotMatch(JSON.stringify(again), new RegExp(connectionSecret));
    // client grants are exported with the application's name; the order of a list is a0deploy's.
    // An export never holds a connection's secret, as on Auth0.
    const expected = structuredClone(modified);
    // Members the file left out come back with the values the server gave them.
    const acmeExpected = byName(expected.connections, 'acme-sso');
    delete acmeExpected.options.client_secret;
    Object.assign(acmeExpected, { is_domain_connection: false, metadata: {}, show_as_button: true });
    assert.deepEqual(normalized(again), normalized(expected));
  });

  it('the m2m application it created gets a token for the new API with the granted scope', async () => {
    const clients = await management('/clients?fields=client_id,name&include_fields=true');
    const worker = clients.body.find((c) => c.name === 'Orders Worker');
    assert.ok(worker);
    // a0deploy never sees secrets: the operator rotates one, as on Auth0.
    const rotated = await management(`/clients/${worker.client_id}/rotate-secret`, { method: 'POST' });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const token = await httpsRequest(`${dev.server}/oauth/token`, {
      caFile: dev.caFile,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: worker.client_id,
        client_secret: rotated.body.client_secret,
        audience: 'https://orders.example.com/api',
      }).toString(),
    });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    assert.equal(token.body.scope, 'read:orders');
  });

  it('tessera import auth0 moves the modified export into a new database, then finds it all there', async () => {
    const target = `sqlite://${path.join(work.dir, 'imported.db')}`;
    const tenantFile = path.join(work.dir, 'export-3', 'tenant.yaml');
    const run = () => new Promise((resolve, reject) => {
      execFile(tesseraBin(), ['import', 'auth0', '--tenant', tenantFile, '--database-url', target],
        { timeout: 60000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
          if (error) reject(new Error(`tessera import auth0 failed: ${stderr || error.message}\n${stdout}`));
          else resolve(stdout);
        });
    });
    const report = await run();
    assert.match(report, /created resourceServers: 2/, report);
    assert.match(report, /https:\/\/orders\.example\.com\/api/, report);
    assert.match(report, /orders-clerk \(rol_\w+, 2 permissions\)/, report);
    const apis = await cli(target, ['apis', 'list']);
    assert.deepEqual(apis.map((a) => a.identifier).filter((i) => !i.endsWith('/api/v2/')).sort(),
      [AUDIENCE, 'https://orders.example.com/api'].sort());
    const grants = await cli(target, ['grants', 'list']);
    assert.ok(grants.some((g) => g.audience === 'https://orders.example.com/api' && g.scope.includes('read:orders')),
      JSON.stringify(grants));
    // A second run finds everything there: it skips, and creates nothing (the tenant's
    // settings are patched again, to the same values).
    const again = await run();
    assert.doesNotMatch(again, /^created (clients|resourceServers|roles|clientGrants)/m, again);
    assert.match(again, /^skipped clients: 4/m, again);
  });

  it('AUTH0_ALLOW_DELETE with the first export removes what the modified import added', async () => {
    await importFrom(first, 'delete', { allowDelete: true });
    const after = await exportTo('export-4');
    // Tenant settings are patched and email templates updated, never deleted (as on Auth0):
    // what the modified import set stays.
    assert.equal(after.tenant.friendly_name, 'Orders Inc.');
    assert.deepEqual(after.emailTemplates.map((t) => t.template), ['verify_email']);
    const { tenant: _afterTenant, emailTemplates: _afterTemplates, ...rest } = after;
    const { tenant: _firstTenant, emailTemplates: _firstTemplates, ...expected } = first;
    assert.deepEqual(normalized(rest), normalized(expected));
  });
});
