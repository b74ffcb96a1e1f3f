// Bad tokens built from a good one: tampered, re-signed with a foreign key, alg "none", and
// HS256 keyed with our own RSA public key (key confusion). Built with `jose` and node:crypto.

import { createPublicKey } from 'node:crypto';
import { SignJWT, generateKeyPair, decodeJwt, decodeProtectedHeader } from 'jose';

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

export { decodeJwt, decodeProtectedHeader };

/** The token with its payload replaced by `change(payload)`, signature kept. */
export function tamperPayload(token, change) {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return `${header}.${b64url(change(claims))}.${signature}`;
}

/** The same claims and header (kid included, unless `kid` is given), signed by a fresh RSA key. */
export async function signWithForeignKey(token, { kid } = {}) {
  const header = decodeProtectedHeader(token);
  const claims = decodeJwt(token);
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  return new SignJWT(claims)
    .setProtectedHeader({ ...header, alg: 'RS256', kid: kid ?? header.kid })
    .sign(privateKey);
}

/** The same claims with `{"alg":"none"}` and an empty signature. */
export function algNone(token) {
  const header = decodeProtectedHeader(token);
  const [, payload] = token.split('.');
  return `${b64url({ ...header, alg: 'none' })}.${payload}.`;
}

/**
 * The same claims signed HS256 with the issuer's RSA public key (PEM, SPKI) as the HMAC
 * secret — the classic algorithm-confusion forgery.
 */
export async function hs256WithPublicKey(token, jwks) {
  const header = decodeProtectedHeader(token);
  const jwk = jwks.keys.find((key) => key.kid === header.kid);
  if (!jwk) throw new Error(`kid ${header.kid} not in the JWKS`);
  const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  return new SignJWT(decodeJwt(token))
    .setProtectedHeader({ ...header, alg: 'HS256' })
    .sign(new TextEncoder().encode(pem));
}
