// What an authenticator app computes from the key the enrollment page shows: RFC 4648 base32,
// RFC 4226 HOTP over RFC 6238 time steps (HMAC-SHA-1, six digits, 30 seconds).

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

export const STEP_SECONDS = 30;

export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = [];
  let bits = 0;
  let value = 0;
  for (const char of text.replace(/\s+/g, '').toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(char)}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

/** The six-digit code of time step `step` (HOTP with the step as counter). */
export function totp(seed, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', seed).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

export const stepNow = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);

/** A code of none of the steps a server accepts around now (it allows one either side). */
export function wrongCode(seed) {
  const now = stepNow();
  const near = new Set([-2, -1, 0, 1, 2].map((d) => totp(seed, now + d)));
  for (let n = 0; n < 10; n += 1) {
    const candidate = String((123456 + n * 111111) % 1_000_000).padStart(6, '0');
    if (!near.has(candidate)) return candidate;
  }
  throw new Error('unreachable: ten candidates all near now');
}

// RFC 6238 appendix B (SHA-1; its codes have 8 digits, an app shows the last six) and RFC 4648's
// base32 of the same key: a broken helper fails here rather than as a refused code.
{
  const seed = Buffer.from('12345678901234567890');
  assert.equal(totp(seed, Math.floor(59 / STEP_SECONDS)), '287082');
  assert.equal(totp(seed, Math.floor(1111111109 / STEP_SECONDS)), '081804');
  assert.deepEqual(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'), seed);
}
