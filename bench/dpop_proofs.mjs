// Prepares the DPoP run of section 2: a DPoP-bound access token for the bench application, and
// COUNT pre-signed proofs for `GET API_URL`, one per request (the guard accepts each jti once).
// Checks first that the sample API admits the token with a fresh proof, refuses that proof a
// second time and refuses the token as a bearer token; exits 1 with the reason otherwise.
// Proofs are signed here, before wrk starts, so the load generator does no signing; they carry
// `iat` = now and stay fresh for a minute, which is why run.sh makes them right before each run.
//
// Usage: node dpop_proofs.mjs ISSUER TOKEN_URL API_URL COUNT OUT_PREFIX < token-request-body
//   ISSUER     the issuer (its `oauth/token` is the `htu` of the token request's proof)
//   TOKEN_URL  where to POST the token request (may differ from the issuer's host)
//   API_URL    the URL wrk requests (the `htu` of every proof)
// Writes OUT_PREFIX.token and OUT_PREFIX.proofs (one proof per line); prints one summary line.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const [issuer, tokenUrl, apiUrl, countText, outPrefix] = process.argv.slice(2);
const count = Number(countText);
if (!outPrefix || !Number.isInteger(count) || count < 1) {
  console.error('usage: node dpop_proofs.mjs ISSUER TOKEN_URL API_URL COUNT OUT_PREFIX < body');
  process.exit(2);
}
const fail = (reason) => {
  console.error(`dpop_proofs: ${reason}`);
  process.exit(1);
};
const b64 = (data) => Buffer.from(data).toString('base64url');

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
const header = b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } }));
// Unique jtis: 128 random bits, then a counter.
const jtiPrefix = b64(randomBytes(16));
let serial = 0;
const proof = (claims) => {
  const input = `${header}.${b64(JSON.stringify({ jti: `${jtiPrefix}${(serial++).toString(36)}`, iat: Math.floor(Date.now() / 1000), ...claims }))}`;
  return `${input}.${b64(sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
};

const response = await fetch(tokenUrl, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof({ htm: 'POST', htu: `${issuer}oauth/token` }) },
  body: readFileSync(0, 'utf8').trim(),
  signal: AbortSignal.timeout(15000),
});
const body = await response.json().catch(() => ({}));
if (response.status !== 200 || body.token_type !== 'DPoP' || typeof body.access_token !== 'string') {
  fail(`the token request answered ${response.status} ${body.error ?? ''} token_type=${body.token_type}`);
}
const token = body.access_token;
const jkt = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).cnf?.jkt;
const thumbprint = b64(createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest());
if (jkt !== thumbprint) fail('the access token is not bound to the key (cnf.jkt)');
const ath = b64(createHash('sha256').update(token).digest());
const forApi = () => proof({ htm: 'GET', htu: apiUrl, ath });

const call = (headers) => fetch(apiUrl, { headers, signal: AbortSignal.timeout(15000) }).then((r) => r.status);
const once = forApi();
const statuses = [
  await call({ authorization: `DPoP ${token}`, dpop: once }),
  await call({ authorization: `DPoP ${token}`, dpop: once }),
  await call({ authorization: `Bearer ${token}` }),
];
if (statuses.join() !== '200,401,401') {
  fail(`expected 200 with a fresh proof, 401 for it again, 401 as a bearer token; got ${statuses.join(', ')}`);
}

const started = process.hrtime.bigint();
const lines = new Array(count);
for (let i = 0; i < count; i += 1) lines[i] = forApi();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
writeFileSync(`${outPrefix}.token`, token);
writeFileSync(`${outPrefix}.proofs`, `${lines.join('\n')}\n`);
console.log(`proofs=${count} seconds=${seconds.toFixed(2)} bytes_per_proof=${lines[0].length} checks=200,401,401`);
