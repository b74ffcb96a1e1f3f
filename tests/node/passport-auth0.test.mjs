// passport-auth0, Auth0's Passport strategy for regular web apps, against `tessera dev --tls`:
// it builds https://DOMAIN/authorize, /oauth/token and /userinfo itself, and sends the access
// token to /userinfo as an `access_token` query parameter (node-oauth's default for GET). The app
// runs in lib/passport-login-process.mjs (NODE_EXTRA_CA_CERTS for the dev CA), signs in the demo
// user through the hosted login page, and reports the profile passport built from /userinfo.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DEMO_EMAIL, startDev } from './lib/dev.mjs';
import { cli, freePort, spawnTracked } from './lib/tessera.mjs';

const LOGIN_PROCESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'passport-login-process.mjs');

describe('passport-auth0 against tessera dev --tls', () => {
  let dev;
  let app;
  let appPort;
  before(async () => {
    dev = await startDev({ tls: true });
    const databaseUrl = `sqlite://${path.join(dev.dataDir, 'tessera.db')}`;
    appPort = await freePort();
    app = await cli(databaseUrl, ['apps', 'create', '--name', 'Passport app', '--type', 'regular',
      '--callbacks', `http://127.0.0.1:${appPort}/callback`]);
  });
  after(async () => {
    await dev?.stop();
  });

  it('logs in and reads the profile from /userinfo?access_token=…, which Tessera never logs', async () => {
    const proc = spawnTracked(process.execPath, [LOGIN_PROCESS], {
      env: {
        NODE_EXTRA_CA_CERTS: dev.caFile,
        DOMAIN: new URL(dev.server).host,
        CLIENT_ID: app.client_id,
        CLIENT_SECRET: app.client_secret,
        EMAIL: DEMO_EMAIL,
        PASSWORD: dev.password,
        APP_PORT: String(appPort),
      },
    });
    const result = await proc.exited;
    const line = proc.output.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, `no result (${JSON.stringify(result)}):\n${proc.output.stdout}\n${proc.output.stderr}`);
    const { authorizeUrl, status, profile, accessToken } = JSON.parse(line.slice('RESULT '.length));
    assert.equal(new URL(authorizeUrl).origin, dev.server);
    assert.equal(status, 200, JSON.stringify(profile));
    assert.match(profile.id, /^auth0\|/);
    assert.deepEqual(profile.emails, [{ value: DEMO_EMAIL }]);
    assert.equal(profile.raw.email, DEMO_EMAIL, 'the profile came from /userinfo');
    assert.equal(typeof accessToken, 'string');
    const logs = `${dev.output.stdout}${dev.output.stderr}`;
    assert.ok(!logs.includes(accessToken), 'the access token is not in the server\'s output');
  });
});
