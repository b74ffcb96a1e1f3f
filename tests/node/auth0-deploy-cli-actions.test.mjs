// auth0-deploy-cli (a0deploy), unmodified, keeping Actions in git against `tessera dev --tls`:
// a tenant YAML with an action (its code in a file, a secret, `deployed: true`) bound to
// post-login is imported — created, deployed, bound by name — then exported back: the same
// action, code and binding, the secret by name only. A second import changes nothing.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

import yaml from 'js-yaml';

import { startDev } from './lib/dev.mjs';
import { cli, tempDir } from './lib/tessera.mjs';
import { httpsRequest } from './lib/tls.mjs';

const require = createRequire(import.meta.url);
const A0DEPLOY = path.join(path.dirname(require.resolve('auth0-deploy-cli/package.json')), 'lib', 'index.js');

const SECRET = 'deploy-cli-secret-3f9a77';
const CODE = `exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim(event.secrets.NAMESPACE + '/roles', event.authorization.roles);
};
`;

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

describe('auth0-deploy-cli imports and exports Actions and their trigger bindings', () => {
  let dev;
  let work;
  let config;
  let management;
  before(async () => {
    dev = await startDev({ tls: true });
    work = await tempDir('tessera-a0deploy-actions-');
    const databaseUrl = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    const audience = `${dev.server}/api/v2/`;
    const api = await cli(databaseUrl, ['apis', 'show', audience]);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Deploy CLI', '--type', 'm2m']);
    await cli(databaseUrl, ['grants', 'create', '--app', app.client_id, '--api', audience,
      '--scopes', api.scopes.map((scope) => scope.value).join(',')]);
    config = path.join(work.dir, 'config.json');
    await writeFile(config, JSON.stringify({
      AUTH0_DOMAIN: new URL(dev.server).host,
      AUTH0_CLIENT_ID: app.client_id,
      AUTH0_CLIENT_SECRET: app.client_secret,
      AUTH0_ALLOW_DELETE: false,
      // Only what this test is about.
      AUTH0_INCLUDED_ONLY: ['actions', 'triggers'],
    }));
    const token = await httpsRequest(`${dev.server}/oauth/token`, {
      caFile: dev.caFile,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, audience,
      }),
    });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    management = (pathAndQuery) => httpsRequest(`${dev.server}/api/v2${pathAndQuery}`, {
      caFile: dev.caFile,
      headers: { authorization: `Bearer ${token.body.access_token}` },
    });
  });
  after(async () => {
    await dev?.stop();
    await work?.remove();
  });

  async function importTenant(name) {
    const dir = path.join(work.dir, name);
    await mkdir(path.join(dir, 'actions', 'add-roles'), { recursive: true });
    await writeFile(path.join(dir, 'actions', 'add-roles', 'code.js'), CODE);
    await writeFile(path.join(dir, 'tenant.yaml'), yaml.dump({
      actions: [{
        name: 'add-roles',
        code: './actions/add-roles/code.js',
        runtime: 'node22',
        dependencies: [],
        secrets: [{ name: 'NAMESPACE', value: SECRET }],
        supported_triggers: [{ id: 'post-login', version: 'v3' }],
        deployed: true,
        status: 'built',
      }],
      triggers: { 'post-login': [{ action_name: 'add-roles', display_name: 'Add roles' }] },
    }));
    const output = await a0deploy(['import', '-c', config, '-i', path.join(dir, 'tenant.yaml')], dev.caFile);
    assert.match(output, /Import Successful/, output);
    assert.ok(!output.includes(SECRET), 'a0deploy printed the secret');
    return output;
  }

  it('imports the action deployed and bound, then exports it back', async () => {
    await importTenant('import-1');
    const actions = await management('/actions/actions?actionName=add-roles');
    assert.equal(actions.status, 200, JSON.stringify(actions.body));
    const [action] = actions.body.actions;
    assert.equal(action.code, CODE);
    assert.equal(action.status, 'built');
    assert.equal(action.deployed_version.number, 1);
    assert.deepEqual(action.secrets.map((s) => s.name), ['NAMESPACE']);
    assert.ok(!JSON.stringify(actions.body).includes(SECRET));
    const bindings = await management('/actions/triggers/post-login/bindings');
    assert.deepEqual(bindings.body.bindings.map((b) => [b.display_name, b.action.name]), [['Add roles', 'add-roles']]);

    const dir = path.join(work.dir, 'export-1');
    await mkdir(dir, { recursive: true });
    await a0deploy(['export', '-c', config, '-f', 'yaml', '-o', dir], dev.caFile);
    const exported = yaml.load(await readFile(path.join(dir, 'tenant.yaml'), 'utf8'));
    const [again] = exported.actions;
    assert.equal(again.name, 'add-roles');
    assert.equal(again.deployed, true);
    assert.deepEqual(again.supported_triggers, [{ id: 'post-login', version: 'v3' }]);
    assert.equal(await readFile(path.join(dir, again.code), 'utf8'), CODE);
    assert.deepEqual(exported.triggers['post-login'], [{ action_name: 'add-roles', display_name: 'Add roles' }]);
    assert.ok(!JSON.stringify(exported).includes(SECRET));
  });

  it('a second import of the same file keeps one action and one binding', async () => {
    await importTenant('import-2');
    const actions = await management('/actions/actions');
    assert.equal(actions.body.total, 1, JSON.stringify(actions.body));
    const bindings = await management('/actions/triggers/post-login/bindings');
    assert.equal(bindings.body.total, 1, JSON.stringify(bindings.body));
  });
});
