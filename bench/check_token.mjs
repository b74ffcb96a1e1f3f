// Reads a token endpoint response (JSON) on stdin and checks that it carries a
// real RS256-signed JWT access token for the expected audience. Exits 1 with a
// reason otherwise. Usage: node check_token.mjs AUDIENCE [ISSUER] < response.json
// (with ISSUER, the `iss` claim must equal it byte for byte).
import { readFileSync } from 'node:fs';

const audience = process.argv[2];
const issuer = process.argv[3];
const raw = readFileSync(0, 'utf8');

function fail(reason) {
  console.error(`token check failed: ${reason}\nresponse: ${raw.slice(0, 500)}`);
  process.exit(1);
}

let body;
try {
  body = JSON.parse(raw);
} catch {
  fail('response is not JSON');
}
const token = body.access_token;
if (typeof token !== 'string') fail('no access_token');
if (String(body.token_type).toLowerCase() !== 'bearer') fail(`token_type is ${body.token_type}`);
const parts = token.split('.');
if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
  fail('access_token is not a compact JWS (three base64url parts)');
}
let header;
let payload;
try {
  header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
} catch {
  fail('JWT header or payload is not base64url JSON');
}
if (header.alg !== 'RS256') fail(`JWT alg is ${header.alg}, not RS256`);
// An RS256 signature is as long as the modulus: 256 bytes for RSA-2048.
const sigLen = Buffer.from(parts[2], 'base64url').length;
if (sigLen !== 256) fail(`signature is ${sigLen} bytes, not 256 (RSA-2048)`);
const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
if (audience && !aud.includes(audience)) fail(`aud ${JSON.stringify(payload.aud)} does not include ${audience}`);
if (typeof payload.exp !== 'number') fail('no exp claim');
if (issuer && payload.iss !== issuer) fail(`iss ${JSON.stringify(payload.iss)} is not ${JSON.stringify(issuer)}`);

console.log(`alg=${header.alg} kid=${header.kid ?? '-'} typ=${header.typ ?? '-'} aud=${JSON.stringify(payload.aud)}${issuer ? ` iss=${JSON.stringify(payload.iss)}` : ''} scope=${JSON.stringify(payload.scope ?? body.scope ?? null)} bytes=${token.length}`);
