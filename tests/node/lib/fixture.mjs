// The shared setup of the interop tests: a seeded Tessera, the good tokens it issues, and the
// bad tokens derived from them.

import {
  startInteropTessera, AUDIENCE, OTHER_AUDIENCE, ES256_AUDIENCE, EDDSA_AUDIENCE,
} from './tessera.mjs';
import { getJson } from './http.mjs';
import { tamperPayload, signWithForeignKey, algNone, hs256WithPublicKey } from './tokens.mjs';

export async function interopFixture() {
  const tessera = await startInteropTessera();
  try {
    const discovery = await getJson(`${tessera.baseUrl}/.well-known/openid-configuration`);
    const jwks = await getJson(discovery.jwks_uri);
    const read = await tessera.token(tessera.reader, AUDIENCE);
    const writeOnly = await tessera.token(tessera.writer, AUDIENCE);
    const otherAudience = await tessera.token(tessera.reader, OTHER_AUDIENCE);
    const es256 = await tessera.token(tessera.reader, ES256_AUDIENCE);
    const eddsa = await tessera.token(tessera.reader, EDDSA_AUDIENCE);
    const tokens = {
      read: read.access_token,
      readResponse: read,
      writeOnly: writeOnly.access_token,
      writeOnlyResponse: writeOnly,
      otherAudience: otherAudience.access_token,
      es256: es256.access_token,
      eddsa: eddsa.access_token,
    };
    // Tokens every verifier must refuse with 401, on any protected route.
    const bad = {
      'garbage (not a JWT)': 'not-a-jwt',
      'garbage (three base64url segments)': 'eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl',
      'tampered payload (write-only token claiming read:messages)': tamperPayload(tokens.writeOnly,
        (claims) => ({ ...claims, scope: 'read:messages write:messages' })),
      'foreign RSA key, same kid as ours': await signWithForeignKey(tokens.read),
      'foreign RSA key, unknown kid': await signWithForeignKey(tokens.read, { kid: 'not-a-tessera-kid' }),
      'alg none, no signature': algNone(tokens.read),
      'HS256 keyed with our RSA public key': await hs256WithPublicKey(tokens.read, jwks),
      'signature of another of our tokens': `${tokens.read.split('.').slice(0, 2).join('.')}.${tokens.writeOnly.split('.')[2]}`,
    };
    return { ...tessera, discovery, jwks, tokens, bad };
  } catch (error) {
    await tessera.close();
    throw error;
  }
}
