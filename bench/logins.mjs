// Timed logins for bench/actions.sh: COUNT sign-ins one after another, each in a fresh
// cookie jar, from /authorize through the hosted login form to the code's redemption at
// /oauth/token — what a person's login costs the server end to end.
//
// Usage: node bench/logins.mjs BASE CLIENT_ID CALLBACK EMAIL PASSWORD COUNT FIRST_OCTET
// Prints one JSON line: {count, p50_ms, p90_ms, p99_ms, mean_ms}.
//
// The login form is throttled per address (60 posts a minute): every 50 logins move to the
// next loopback address, 127.0.0.FIRST_OCTET and up, each its own client to the throttle.

import { hidden, httpClient } from './http.mjs';
import { createHash, randomBytes } from 'node:crypto';

const [base, clientId, callback, email, password, countText, firstOctetText] = process.argv.slice(2);
const count = Number(countText);
const firstOctet = Number(firstOctetText);
if (!base || !clientId || !callback || !email || !password || !(count > 0) || !(firstOctet >= 2)) {
  console.error('usage: node bench/logins.mjs BASE CLIENT_ID CALLBACK EMAIL PASSWORD COUNT FIRST_OCTET');
  process.exit(2);
}

const request = httpClient({ timeout: 30000 });

async function login(localAddress) {
  const cookies = new Map();
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL('/authorize', base);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: callback, scope: 'openid',
    state: 'bench', code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  const started = process.hrtime.bigint();
  let res = await request(authorize, { cookies, localAddress });
  if (res.status !== 302) throw new Error(`/authorize answered ${res.status}`);
  const page = await request(new URL(res.headers.location, base), { cookies, localAddress });
  res = await request(new URL('/u/login', base), {
    method: 'POST', cookies, localAddress,
    form: { state: hidden(page.body, 'state'), csrf: hidden(page.body, 'csrf'), username: email, password },
  });
  if (res.status !== 303) throw new Error(`the login form answered ${res.status}: ${res.body.slice(0, 200)}`);
  res = await request(new URL(res.headers.location, base), { cookies, localAddress });
  const back = new URL(res.headers.location ?? '', base);
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code: ${res.status} ${res.headers.location}`);
  res = await request(new URL('/oauth/token', base), {
    method: 'POST', cookies: new Map(), localAddress,
    form: { grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: callback, code_verifier: verifier },
  });
  if (res.status !== 200) throw new Error(`/oauth/token answered ${res.status}: ${res.body.slice(0, 200)}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const times = [];
for (let i = 0; i < count; i++) {
  times.push(await login(`127.0.0.${firstOctet + Math.floor(i / 50)}`));
}
times.sort((a, b) => a - b);
const at = (p) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)];
const mean = times.reduce((a, b) => a + b, 0) / times.length;
console.log(JSON.stringify({ count, p50_ms: at(50), p90_ms: at(90), p99_ms: at(99), mean_ms: mean }));
request.close();
