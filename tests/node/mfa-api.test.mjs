// Auth0's own JavaScript authentication client (@auth0/auth0-auth-js, the library under
// auth0-spa-js and nextjs-auth0) through Auth0's MFA API against Tessera: getTokenByPassword
// answers mfa_required with an mfa_token (isMfaRequiredError), mfa.listAuthenticators,
// mfa.enrollAuthenticator (otp) with a secret, otpauth URI and recovery code, mfa.verify with the
// app's code (the enrollment confirmed, tokens issued), mfa.challengeAuthenticator at the next
// sign-in, a wrong code refused, and mfa.verify with the recovery code, which returns the next one.
//
// The SDK builds https://DOMAIN/…: Tessera's issuer is https://127.0.0.1:PORT/ while it listens
// on plain http, and the SDK's documented customFetch sends each request to http://. Discovery,
// the issuer check and the ID token's signature are the SDK's own.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { AuthClient, isMfaRequiredError } from '@auth0/auth0-auth-js';
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';

import { AUDIENCE, cli, clientCredentialsToken, freePort, spawnTracked, tempDir, tesseraBin, waitFor } from './lib/tessera.mjs';
import { base32Decode, stepNow, totp, wrongCode } from './lib/totp.mjs';

const PASSWORD = 'correct horse battery staple';
const EMAIL = 'robin@example.com';
const MFA_GRANTS = ['http://auth0.com/oauth/grant-type/mfa-otp', 'http://auth0.com/oauth/grant-type/mfa-recovery-code'];

describe('@auth0/auth0-auth-js MFA API against Tessera', () => {
  let tmp;
  let proc;
  let baseUrl;
  let issuer;
  let auth;

  before(async () => {
    tmp = await tempDir();
    const databaseUrl = `sqlite://${path.join(tmp.dir, 't.db')}`;
    await cli(databaseUrl, ['apis', 'create', '--name', 'Quickstart API', '--identifier', AUDIENCE,
      '--scopes', 'read:messages', '--allow-offline-access']);
    const app = await cli(databaseUrl, ['apps', 'create', '--name', 'Backend', '--type', 'regular',
      '--grant-types', ['password', 'refresh_token', ...MFA_GRANTS].join(',')]);
    await cli(databaseUrl, ['users', 'create', '--email', EMAIL, '--password-stdin'], { input: `${PASSWORD}\n` });
    const m2m = await cli(databaseUrl, ['apps', 'create', '--name', 'Automation', '--type', 'm2m']);

    const port = await freePort();
    issuer = `https://127.0.0.1:${port}/`;
    baseUrl = `http://127.0.0.1:${port}`;
    proc = spawnTracked(tesseraBin(), ['serve', '--listen', `127.0.0.1:${port}`, '--issuer', issuer,
      '--database-url', databaseUrl], { env: { RUST_LOG: 'warn' } });
    await waitFor('tessera serve to listen', () => /tessera listening on/.test(proc.output.stderr), { timeoutMs: 30000 });
    await cli(databaseUrl, ['grants', 'create', '--app', m2m.client_id, '--api', `${issuer}api/v2/`,
      '--scopes', 'update:guardian_factors,update:mfa_policies']);
    const { access_token: admin } = await clientCredentialsToken(baseUrl, {
      clientId: m2m.client_id, clientSecret: m2m.client_secret, audience: `${issuer}api/v2/`,
    });
    for (const [pathname, body] of [['/guardian/factors/otp', { enabled: true }], ['/guardian/policies', ['all-applications']]]) {
      const response = await fetch(`${baseUrl}/api/v2${pathname}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
      });
      assert.equal(response.status, 200, await response.text());
    }

    auth = new AuthClient({
      domain: `127.0.0.1:${port}`,
      clientId: app.client_id,
      clientSecret: app.client_secret,
      customFetch: (url, init) => fetch(String(url).replace(/^https:\/\//, 'http://'), init),
    });
  });
  after(async () => {
    await proc?.stop();
    await tmp?.remove();
  });

  /** getTokenByPassword, which must fail as Auth0's mfa_required; the mfa_token. */
  async function mfaToken() {
    const error = await auth.getTokenByPassword({
      username: EMAIL, password: PASSWORD, audience: AUDIENCE, scope: 'openid offline_access read:messages',
    }).then(() => null, (e) => e);
    assert.ok(error, 'the password alone signs nobody in');
    assert.ok(isMfaRequiredError(error), `mfa_required with an mfa_token: ${error}`);
    assert.equal(error.cause.error_description, 'Multifactor authentication required');
    return error.cause.mfa_token;
  }

  const verified = async (accessToken) => {
    const jwks = createRemoteJWKSet(new URL(`${baseUrl}/.well-known/jwks.json`));
    return (await jwtVerify(accessToken, jwks, { issuer, audience: AUDIENCE })).payload;
  };

  let seed;
  let recoveryCode;
  let lastStep;

  it('a user without a factor enrolls an authenticator app and signs in with its first code', { timeout: 60000 }, async () => {
    const token = await mfaToken();
    assert.deepEqual(await auth.mfa.listAuthenticators({ mfaToken: token }), []);
    await assert.rejects(
      auth.mfa.challengeAuthenticator({ mfaToken: token, challengeType: 'otp' }),
      (error) => error.cause?.error === 'association_required' && error.statusCode === 400,
    );
    const enrollment = await auth.mfa.enrollAuthenticator({ mfaToken: token, authenticatorTypes: ['otp'] });
    assert.equal(enrollment.authenticatorType, 'otp');
    assert.match(enrollment.barcodeUri, /^otpauth:\/\/totp\/.+secret=/);
    assert.equal(enrollment.recoveryCodes.length, 1);
    seed = base32Decode(enrollment.secret);
    recoveryCode = enrollment.recoveryCodes[0];

    await assert.rejects(
      auth.mfa.verify({ mfaToken: token, factorType: 'otp', otp: wrongCode(seed) }),
      (error) => error.cause?.error === 'invalid_grant' && error.statusCode === 403,
    );
    lastStep = stepNow();
    const tokens = await auth.mfa.verify({ mfaToken: token, factorType: 'otp', otp: totp(seed, lastStep) });
    const claims = await verified(tokens.accessToken);
    assert.match(claims.sub, /^auth0\|/);
    assert.ok(claims.scope.split(' ').includes('read:messages'), claims.scope);
    assert.deepEqual(decodeJwt(tokens.idToken).amr, ['pwd', 'mfa', 'otp']);
    assert.equal(typeof tokens.refreshToken, 'string', 'offline_access kept across the second factor');
  });

  it('the next sign-in is challenged and passes with the next code', { timeout: 60000 }, async () => {
    assert.ok(seed, 'enrolled by the test before');
    const token = await mfaToken();
    const listed = await auth.mfa.listAuthenticators({ mfaToken: token });
    const otp = listed.find((a) => a.authenticatorType === 'otp');
    assert.ok(otp?.active, JSON.stringify(listed));
    assert.ok(listed.some((a) => a.authenticatorType === 'recovery-code' && a.active), JSON.stringify(listed));
    const challenge = await auth.mfa.challengeAuthenticator({ mfaToken: token, challengeType: 'otp', authenticatorId: otp.id });
    assert.equal(challenge.challengeType, 'otp');
    const tokens = await auth.mfa.verify({ mfaToken: token, factorType: 'otp', otp: totp(seed, lastStep + 1) });
    await verified(tokens.accessToken);
  });

  it('the recovery code signs in once and the answer carries the next one', { timeout: 60000 }, async () => {
    assert.ok(recoveryCode, 'enrolled by the test before');
    const token = await mfaToken();
    const tokens = await auth.mfa.verify({ mfaToken: token, factorType: 'recovery-code', recoveryCode });
    await verified(tokens.accessToken);
    assert.equal(typeof tokens.recoveryCode, 'string');
    assert.notEqual(tokens.recoveryCode, recoveryCode);
    const again = await mfaToken();
    await assert.rejects(
      auth.mfa.verify({ mfaToken: again, factorType: 'recovery-code', recoveryCode }),
      (error) => error.cause?.error === 'invalid_grant' && error.statusCode === 403,
    );
  });
});
