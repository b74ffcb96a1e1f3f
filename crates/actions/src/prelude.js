// The host side of an action's context, evaluated once in every new context.
//
// The block below runs once per context: it keeps the built-ins it relies on, installs
// `console` and `require`, and defines `prelude`, which the engine calls once per
// context with the limits and the trigger and which returns the controller the engine
// drives (its `begin` starts every execution afresh) (the engine evaluates this file as a strict block ending in `prelude`: a
// declaration parses faster than a parenthesised expression, which QuickJS scans twice).
// An action's context is kept for its next executions, as Auth0 keeps an action's module
// loaded: its top level runs once, the first execution's, and what it leaves in module
// scope stays. A rule gets a new context every time.
//
// Nothing here calls into Rust: `api` methods only record `[method, JSON of the
// arguments]`, `console` writes to the running execution's `output.log`, and the cache
// works on a snapshot whose writes go back as a list. The engine reads it all as data
// once the execution ends and validates and applies it in Rust. (Rust functions called
// from JavaScript would keep a context alive through rquickjs's per-runtime prototype
// cache.)

// Captured before the administrator's code can replace them.
const stringify = JSON.stringify;
const parse = JSON.parse;
const keys = Object.keys;
const ErrorOf = Error;
const TypeErrorOf = TypeError;
const StringOf = String;
const now = Date.now;
const then = Promise.prototype.then;
const resolved = Promise.resolve.bind(Promise);
// For `api.redirect`'s tokens: prototype methods bound once (`codeUnit(text, i)`), so code
// that replaces a prototype's method later changes nothing here.
const FunctionCall = Function.prototype.call;
const codeUnit = FunctionCall.bind(String.prototype.charCodeAt);
const sliceText = FunctionCall.bind(String.prototype.slice);
const hasOwn = FunctionCall.bind(Object.prototype.hasOwnProperty);
const fromCharCode = String.fromCharCode;
const isArray = Array.isArray;
const Bytes = Uint8Array;
const Words = Int32Array;

// The execution running now: where `console` writes and how much it may, and the state
// `api` records into.
let active = { output: { log: '' }, rawLogCap: 0, state: null, maxKeyBytes: 0, maxValueBytes: 0, executedRules: [] };
// The action's `module`, once its top level has run in this context.
let loadedModule = null;

function describeError(error) {
  try {
    if (error !== null && typeof error === 'object') {
      const message = error.message !== undefined ? StringOf(error.message) : describe(error);
      return (error.name ? StringOf(error.name) : 'Error') + ': ' + message;
    }
    return 'thrown: ' + StringOf(error);
  } catch (_) {
    return 'thrown: an unprintable value';
  }
}

function describe(value) {
  if (typeof value === 'string') return value;
  if (value instanceof ErrorOf) return describeError(value);
  try {
    if (typeof value === 'object' && value !== null) {
      const text = stringify(value);
      if (text !== undefined) return text;
    }
    return StringOf(value);
  } catch (_) {
    return '[unprintable]';
  }
}

function log(...args) {
  let line = '';
  for (let i = 0; i < args.length; i++) line += (i ? ' ' : '') + describe(args[i]);
  line += '\n';
  const output = active.output;
  const room = active.rawLogCap - output.log.length;
  if (room <= 0) return;
  let kept = line.slice(0, room);
  const last = kept.charCodeAt(kept.length - 1);
  // Never end on half of a surrogate pair.
  if (kept.length < line.length && last >= 0xd800 && last <= 0xdbff) kept = kept.slice(0, -1);
  output.log += kept;
}
globalThis.console = { log, info: log, warn: log, error: log, debug: log, trace: log };

function require() {
  throw new ErrorOf("require is not supported: bundle your dependencies into the action's code");
}
globalThis.require = require;

function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    bytes += unit < 0x80 ? 1 : unit < 0x800 ? 2 : unit >= 0xd800 && unit <= 0xdbff ? (i++, 4) : 3;
  }
  return bytes;
}

// The trigger's cache when the execution started plus its own writes; the engine
// applies the writes (`cache_ops`) with the same limits. Like `api`, it works on the
// running execution's state.
const cache = {
  get(key) {
    const entry = active.state.cache[StringOf(key)];
    return entry === undefined || entry.expires_at <= now()
      ? undefined
      : { value: entry.value, expires_at: entry.expires_at };
  },
  set(key, value, options) {
    const name = StringOf(key);
    const at = now();
    if (typeof value !== 'string') return { type: 'error', code: 'invalid_argument' };
    if (!name || utf8Length(name) > active.maxKeyBytes) return { type: 'error', code: 'invalid_key' };
    if (value.length > active.maxValueBytes || utf8Length(value) > active.maxValueBytes) {
      return { type: 'error', code: 'value_too_large' };
    }
    let expiresAt = at + 15 * 60 * 1000;
    if (options && options.expires_at !== undefined) expiresAt = Number(options.expires_at);
    else if (options && options.ttl !== undefined) expiresAt = at + Number(options.ttl);
    if (!(expiresAt > at)) return { type: 'error', code: 'invalid_expiry' };
    active.state.cache[name] = { value: value, expires_at: expiresAt };
    active.state.cacheOps.push(['set', name, value, expiresAt]);
    return { type: 'success' };
  },
  delete(key) {
    delete active.state.cache[StringOf(key)];
    active.state.cacheOps.push(['delete', StringOf(key)]);
    return { type: 'success' };
  },
};

// `api.redirect` (post-login). The execution's context (`state.redirect`, parsed from the
// JSON the engine passes to `startAction`, `null` when there is none) says whether the
// user may be sent away, the `state`, `iss` and `sub` of tokens and, in
// `onContinuePostLogin` only, the `/continue` request's body and query as the event had
// them before any code ran. `sendUserTo` records a call; the engine checks the URL.
function redirectContext(method) {
  const context = active.state.redirect;
  if (context === null) throw new ErrorOf('api.redirect.' + method + ': this login cannot redirect');
  return context;
}

function canRedirect() {
  const context = active.state.redirect;
  return context !== null && context.allowed === true;
}

function isRecord(value) {
  return value !== null && typeof value === 'object' && !isArray(value);
}

function sendUserTo(url, options) {
  if (!canRedirect()) {
    throw new ErrorOf('api.redirect.sendUserTo: this login cannot redirect (there is no browser to send: refresh token, password grant or prompt=none); check api.redirect.canRedirect() first');
  }
  if (typeof url !== 'string') throw new TypeErrorOf('api.redirect.sendUserTo: the URL must be a string');
  let query;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object') throw new TypeErrorOf('api.redirect.sendUserTo: options must be an object');
    query = options.query;
  }
  if (query !== undefined && query !== null && !isRecord(query)) {
    throw new TypeErrorOf('api.redirect.sendUserTo: options.query must be an object');
  }
  // [url, [[name, value], …]]: every value already text, as Auth0 puts it in the URL.
  let text = '[' + stringify(url) + ',[';
  const names = query === undefined || query === null ? [] : keys(query);
  let count = 0;
  for (let i = 0; i < names.length; i++) {
    const value = query[names[i]];
    let valueText;
    if (typeof value === 'string') valueText = value;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') valueText = StringOf(value);
    else if (value !== null && typeof value === 'object') {
      try {
        valueText = stringify(value);
      } catch (error) {
        throw new TypeErrorOf('api.redirect.sendUserTo: the query parameter ' + stringify(names[i]) + ' cannot be serialised to JSON (' + describeError(error) + ')');
      }
    }
    // undefined, null, functions and symbols are left out, as JSON would.
    if (typeof valueText !== 'string') continue;
    text += (count++ ? ',[' : '[') + stringify(names[i]) + ',' + stringify(valueText) + ']';
  }
  active.state.calls.push(['redirect.sendUserTo', text + ']]']);
}

// HS256 tokens. QuickJS has no crypto and no Rust function is callable from here (see the
// top of this file), so SHA-256, HMAC, UTF-8 and base64url are written out below. They
// use operators, loops, typed arrays (whose lengths are passed along, since `length` is a
// replaceable getter) and the built-ins captured above, so replacing `Math`, `JSON` or a
// prototype's method cannot change a signature.
const SHA256_K = new Words([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const SHA256_H = new Words([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

// The 32-byte digest of `message`'s first `length` bytes.
function sha256(message, length) {
  const end = (((length + 8) >>> 6) + 1) * 64;
  const padded = new Bytes(end);
  for (let i = 0; i < length; i++) padded[i] = message[i];
  padded[length] = 0x80;
  const high = (length / 0x20000000) >>> 0;
  const low = (length * 8) >>> 0;
  for (let i = 0; i < 4; i++) {
    padded[end - 8 + i] = high >>> (24 - 8 * i);
    padded[end - 4 + i] = low >>> (24 - 8 * i);
  }
  const hash = new Words(8);
  for (let i = 0; i < 8; i++) hash[i] = SHA256_H[i];
  const w = new Words(64);
  for (let offset = 0; offset < end; offset += 64) {
    for (let t = 0; t < 16; t++) {
      const j = offset + 4 * t;
      w[t] = (padded[j] << 24) | (padded[j + 1] << 16) | (padded[j + 2] << 8) | padded[j + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    let a = hash[0], b = hash[1], c = hash[2], d = hash[3], e = hash[4], f = hash[5], g = hash[6], h = hash[7];
    for (let t = 0; t < 64; t++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + s1 + ((e & f) ^ (~e & g)) + SHA256_K[t] + w[t]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    hash[0] += a; hash[1] += b; hash[2] += c; hash[3] += d;
    hash[4] += e; hash[5] += f; hash[6] += g; hash[7] += h;
  }
  const digest = new Bytes(32);
  for (let i = 0; i < 32; i++) digest[i] = hash[i >>> 2] >>> (24 - 8 * (i & 3));
  return digest;
}

// HMAC-SHA256 (RFC 2104) of `message`'s first `length` bytes.
function hmacSha256(key, keyLength, message, length) {
  if (keyLength > 64) {
    key = sha256(key, keyLength);
    keyLength = 32;
  }
  const inner = new Bytes(64 + length);
  const outer = new Bytes(64 + 32);
  for (let i = 0; i < 64; i++) {
    const byte = i < keyLength ? key[i] : 0;
    inner[i] = byte ^ 0x36;
    outer[i] = byte ^ 0x5c;
  }
  for (let i = 0; i < length; i++) inner[64 + i] = message[i];
  const innerDigest = sha256(inner, 64 + length);
  for (let i = 0; i < 32; i++) outer[64 + i] = innerDigest[i];
  return sha256(outer, 96);
}

// [bytes, length]: UTF-8, a lone surrogate becoming U+FFFD (as Node's Buffer does).
function utf8(text) {
  const units = text.length;
  const bytes = new Bytes(units * 3);
  let at = 0;
  for (let i = 0; i < units; i++) {
    let code = codeUnit(text, i);
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = i + 1 < units ? codeUnit(text, i + 1) : 0;
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        code = 0xfffd;
      }
    }
    if (code < 0x80) {
      bytes[at++] = code;
    } else if (code < 0x800) {
      bytes[at++] = 0xc0 | (code >>> 6);
      bytes[at++] = 0x80 | (code & 0x3f);
    } else if (code < 0x10000) {
      bytes[at++] = 0xe0 | (code >>> 12);
      bytes[at++] = 0x80 | ((code >>> 6) & 0x3f);
      bytes[at++] = 0x80 | (code & 0x3f);
    } else {
      bytes[at++] = 0xf0 | (code >>> 18);
      bytes[at++] = 0x80 | ((code >>> 12) & 0x3f);
      bytes[at++] = 0x80 | ((code >>> 6) & 0x3f);
      bytes[at++] = 0x80 | (code & 0x3f);
    }
  }
  return [bytes, at];
}

// The text of strict UTF-8 (no overlong forms, no surrogates), or null.
function fromUtf8(bytes, length) {
  let text = '';
  for (let i = 0; i < length; ) {
    const first = bytes[i];
    let code, more, least;
    if (first < 0x80) (code = first), (more = 0), (least = 0);
    else if (first >= 0xc2 && first <= 0xdf) (code = first & 0x1f), (more = 1), (least = 0x80);
    else if (first >= 0xe0 && first <= 0xef) (code = first & 0x0f), (more = 2), (least = 0x800);
    else if (first >= 0xf0 && first <= 0xf4) (code = first & 0x07), (more = 3), (least = 0x10000);
    else return null;
    if (i + more >= length) return null;
    for (let k = 1; k <= more; k++) {
      const next = bytes[i + k];
      if ((next & 0xc0) !== 0x80) return null;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < least || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return null;
    i += more + 1;
    if (code < 0x10000) text += fromCharCode(code);
    else text += fromCharCode(0xd800 + ((code - 0x10000) >>> 10), 0xdc00 + ((code - 0x10000) & 0x3ff));
  }
  return text;
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// Unpadded base64url.
function toBase64url(bytes, length) {
  let text = '';
  let i = 0;
  for (; i + 2 < length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    text += BASE64URL[n >>> 18] + BASE64URL[(n >>> 12) & 63] + BASE64URL[(n >>> 6) & 63] + BASE64URL[n & 63];
  }
  if (length - i === 1) {
    const n = bytes[i] << 16;
    text += BASE64URL[n >>> 18] + BASE64URL[(n >>> 12) & 63];
  } else if (length - i === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    text += BASE64URL[n >>> 18] + BASE64URL[(n >>> 12) & 63] + BASE64URL[(n >>> 6) & 63];
  }
  return text;
}

// [bytes, length] of canonical unpadded base64url, or null.
function fromBase64url(text) {
  const units = text.length;
  if (units % 4 === 1) return null;
  const bytes = new Bytes((units * 3) >>> 2);
  let buffer = 0, bits = 0, at = 0;
  for (let i = 0; i < units; i++) {
    const c = codeUnit(text, i);
    let value;
    if (c >= 65 && c <= 90) value = c - 65;
    else if (c >= 97 && c <= 122) value = c - 71;
    else if (c >= 48 && c <= 57) value = c + 4;
    else if (c === 45) value = 62;
    else if (c === 95) value = 63;
    else return null;
    buffer = ((buffer << 6) | value) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[at++] = buffer >>> bits;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) return null;
  return [bytes, at];
}

function signHs256(secret, signingInput) {
  const key = utf8(secret);
  const input = utf8(signingInput);
  return hmacSha256(key[0], key[1], input[0], input[1]);
}

const JWT_HEADER = (() => {
  const header = utf8('{"alg":"HS256","typ":"JWT"}');
  return toBase64url(header[0], header[1]);
})();
const TOKEN_SECONDS = 900;
const MAX_TOKEN_SECONDS = 30 * 24 * 3600;

function secretOf(method, options) {
  if (!isRecord(options)) throw new TypeErrorOf('api.redirect.' + method + ': pass an options object');
  const secret = options.secret;
  if (typeof secret !== 'string' || secret === '') throw new TypeErrorOf('api.redirect.' + method + ': secret must be a non-empty string');
  return secret;
}

function encodeToken(options) {
  const context = redirectContext('encodeToken');
  const secret = secretOf('encodeToken', options);
  const payload = options.payload;
  if (!isRecord(payload)) throw new TypeErrorOf('api.redirect.encodeToken: payload must be an object');
  let lifetime = options.expiresInSeconds;
  if (lifetime === undefined) lifetime = TOKEN_SECONDS;
  else if (typeof lifetime !== 'number' || !(lifetime > 0 && lifetime <= MAX_TOKEN_SECONDS)) {
    throw new TypeErrorOf('api.redirect.encodeToken: expiresInSeconds must be a number of seconds above 0 and at most ' + MAX_TOKEN_SECONDS + ' (30 days)');
  }
  let seconds = lifetime - (lifetime % 1);
  if (seconds < lifetime) seconds += 1;
  let claims;
  try {
    claims = parse(stringify(payload));
  } catch (error) {
    throw new TypeErrorOf('api.redirect.encodeToken: payload cannot be serialised to JSON (' + describeError(error) + ')');
  }
  if (!isRecord(claims)) throw new TypeErrorOf('api.redirect.encodeToken: payload must serialise to a JSON object');
  delete claims.iss;
  delete claims.sub;
  delete claims.state;
  delete claims.iat;
  delete claims.exp;
  // The standard claims are written as text (a primitive has no toJSON to replace) and
  // last, so they win over anything a replaced `toJSON` slipped into the payload.
  const members = stringify(claims);
  if (typeof members !== 'string' || codeUnit(members, 0) !== 123 || codeUnit(members, members.length - 1) !== 125) {
    throw new TypeErrorOf('api.redirect.encodeToken: payload must serialise to a JSON object');
  }
  const ms = now();
  const iat = (ms - (ms % 1000)) / 1000;
  const standard = '"iss":' + stringify(StringOf(context.issuer)) + ',"sub":' + stringify(StringOf(context.subject)) +
    ',"state":' + stringify(StringOf(context.state)) + ',"iat":' + StringOf(iat) + ',"exp":' + StringOf(iat + seconds);
  const body = members === '{}' ? '{' + standard + '}' : sliceText(members, 0, members.length - 1) + ',' + standard + '}';
  const encoded = utf8(body);
  const signingInput = JWT_HEADER + '.' + toBase64url(encoded[0], encoded[1]);
  return signingInput + '.' + toBase64url(signHs256(secret, signingInput), 32);
}

function ownValue(record, name) {
  return isRecord(record) && hasOwn(record, name) ? record[name] : undefined;
}

// The JSON object in a base64url segment, or null.
function segmentObject(text) {
  const decoded = fromBase64url(text);
  const json = decoded === null ? null : fromUtf8(decoded[0], decoded[1]);
  if (json === null) return null;
  try {
    const value = parse(json);
    return isRecord(value) ? value : null;
  } catch (_) {
    return null;
  }
}

function validateToken(options) {
  const context = redirectContext('validateToken');
  if (context.continuing !== true) {
    throw new ErrorOf('api.redirect.validateToken: there is no /continue request to read a token from (call it in onContinuePostLogin)');
  }
  const secret = secretOf('validateToken', options);
  let name = options.tokenParameterName;
  if (name === undefined) name = 'session_token';
  else if (typeof name !== 'string' || name === '') throw new TypeErrorOf('api.redirect.validateToken: tokenParameterName must be a non-empty string');
  const invalid = (why) => new ErrorOf('The session token is invalid: ' + why);
  let token;
  if (isRecord(context.body) && hasOwn(context.body, name)) token = context.body[name];
  else if (isRecord(context.query) && hasOwn(context.query, name)) token = context.query[name];
  else throw invalid('the request has no ' + stringify(name) + ' parameter');
  if (typeof token !== 'string') throw invalid('the ' + stringify(name) + ' parameter is not a string');
  let first = -1, second = -1;
  for (let i = 0; i < token.length; i++) {
    if (codeUnit(token, i) !== 46) continue;
    if (first < 0) first = i;
    else if (second < 0) second = i;
    else throw invalid('it is not three base64url segments');
  }
  if (second < 0) throw invalid('it is not three base64url segments');
  const header = segmentObject(sliceText(token, 0, first));
  if (header === null) throw invalid('its header is not a base64url JSON object');
  if (ownValue(header, 'alg') !== 'HS256') throw invalid('its algorithm is not HS256');
  const signature = fromBase64url(sliceText(token, second + 1, token.length));
  if (signature === null || signature[1] !== 32) throw invalid('the signature does not match');
  const expected = signHs256(secret, sliceText(token, 0, second));
  let difference = 0;
  for (let i = 0; i < 32; i++) difference |= expected[i] ^ signature[0][i];
  if (difference !== 0) throw invalid('the signature does not match');
  const claims = segmentObject(sliceText(token, first + 1, second));
  if (claims === null) throw invalid('its claims are not a base64url JSON object');
  const exp = ownValue(claims, 'exp');
  if (typeof exp !== 'number') throw invalid('exp is missing or not a number');
  if (exp <= now() / 1000) throw invalid('it expired');
  if (typeof ownValue(claims, 'iat') !== 'number') throw invalid('iat is missing or not a number');
  if (ownValue(claims, 'sub') !== context.subject) throw invalid('sub is not the user logging in');
  if (ownValue(claims, 'state') !== context.state) throw invalid('State in the token does not match the /continue state');
  if (typeof ownValue(claims, 'iss') !== 'string') throw invalid('iss is missing or not a string');
  return claims;
}

// `api` is built once per context and records into the running execution's state.
// Each trigger's recorded methods; `!` marks one that throws "not supported yet".
const METHODS = {
  'post-login': 'access.deny accessToken.setCustomClaim accessToken.addScope accessToken.removeScope idToken.setCustomClaim user.setAppMetadata user.setUserMetadata multifactor.enable !multifactor.getEnrolledFactors !authentication.challengeWith !authentication.challengeWithAny !authentication.enrollWith !authentication.enrollWithAny !authentication.recordMethod !authentication.setPrimaryUser session.revoke session.setExpiresAt session.setIdleExpiresAt session.setMetadata session.deleteMetadata session.evictMetadata refreshToken.revoke refreshToken.setExpiresAt refreshToken.setIdleExpiresAt refreshToken.setMetadata refreshToken.deleteMetadata refreshToken.evictMetadata !transaction.setMetadata !transaction.addTargetScope !transaction.removeTargetScope !transaction.setTargetScopes !transaction.clearTargetScopes !prompt.render !samlResponse.setAttribute',
  'credentials-exchange': 'access.deny accessToken.setCustomClaim !transaction.addTargetScope !transaction.removeTargetScope !transaction.setTargetScopes !transaction.clearTargetScopes',
  'pre-user-registration': 'access.deny validation.error user.setAppMetadata user.setUserMetadata',
};
const DENY_CODES = ['invalid_scope', 'invalid_request', 'server_error'];
// A session's or a refresh token's metadata keys and values, in characters (code points);
// the engine checks again, and holds each to 25 keys.
const METADATA_CHARACTERS = 255;

function isMetadataText(text, least) {
  if (typeof text !== 'string') return false;
  let characters = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = codeUnit(text, i);
    // A surrogate pair is one character.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = codeUnit(text, i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
    }
    characters += 1;
    if (characters > METADATA_CHARACTERS) return false;
  }
  return characters >= least;
}
const MFA_PROVIDERS = ['any', 'guardian', 'google-authenticator', 'duo', 'none'];

function buildApi(trigger) {
  const api = { cache };
  for (const entry of (METHODS[trigger] || '').split(' ')) {
    if (!entry) continue;
    const unsupported = entry[0] === '!';
    const path = unsupported ? entry.slice(1) : entry;
    const [namespace, name] = path.split('.');
    (api[namespace] = api[namespace] || {})[name] = function (...args) {
      if (unsupported) throw new ErrorOf('api.' + path + ' is not supported yet');
      if (path === 'access.deny' && trigger === 'credentials-exchange' && DENY_CODES.indexOf(args[0]) < 0) {
        throw new TypeErrorOf('api.access.deny: the code must be one of ' + DENY_CODES.join(', ') + ' (got ' + stringify(StringOf(args[0])) + ')');
      }
      // The engine checks again: an action may have replaced the built-ins used here.
      if (/^(refreshToken|session)\.set(Idle)?ExpiresAt$/.test(path) && !(typeof args[0] === 'number' && args[0] - args[0] === 0)) {
        throw new TypeErrorOf('api.' + path + ': the time must be a number of milliseconds since 1970 (got ' + stringify(StringOf(args[0])) + ')');
      }
      if (path === 'session.revoke' && (typeof args[0] !== 'string'
          || (args[1] !== undefined && (args[1] === null || typeof args[1] !== 'object'
            || (args[1].preserveRefreshTokens !== undefined && typeof args[1].preserveRefreshTokens !== 'boolean'))))) {
        throw new TypeErrorOf('api.session.revoke: pass a reason (a string) and optionally {preserveRefreshTokens: true|false}');
      }
      if ((name === 'setMetadata' || name === 'deleteMetadata') && !isMetadataText(args[0], 1)) {
        throw new TypeErrorOf('api.' + path + ': the key must be a string of 1 to ' + METADATA_CHARACTERS + ' characters (got ' + stringify(StringOf(args[0])) + ')');
      }
      if (name === 'setMetadata' && !isMetadataText(args[1], 0)) {
        throw new TypeErrorOf('api.' + path + ': the value must be a string of at most ' + METADATA_CHARACTERS + ' characters (got ' + (typeof args[1] === 'string' ? 'a longer one' : stringify(StringOf(args[1]))) + ')');
      }
      if (path === 'multifactor.enable' && MFA_PROVIDERS.indexOf(args[0]) < 0) {
        throw new TypeErrorOf('api.multifactor.enable: the provider must be one of ' + MFA_PROVIDERS.join(', ') + ' (got ' + stringify(StringOf(args[0])) + ')');
      }
      // A claim set to undefined is left out, as JSON would.
      if (name === 'setCustomClaim' && args[1] === undefined) return api;
      let text;
      try {
        text = stringify(args.map((arg) => (arg === undefined ? null : arg)));
      } catch (error) {
        throw new TypeErrorOf('api.' + path + ': the value cannot be serialised to JSON (' + describeError(error) + ')');
      }
      active.state.calls.push([path, text]);
      return api;
    };
  }
  if (trigger === 'post-login') {
    api.redirect = { canRedirect, sendUserTo, encodeToken, validateToken };
    api.rules = { wasExecuted: (id) => active.executedRules.indexOf(StringOf(id)) >= 0 };
  }
  return api;
}

class UnauthorizedError extends ErrorOf {
  constructor(message) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

// Called once per context with the limits and the trigger: builds `api` and returns the
// controller the engine drives for every execution in this context. `begin` resets the
// output and the state for each execution (the objects are reused: making them anew
// cost as much as a small handler); a promise reaction carries the number of the
// execution that attached it, so a promise settled late never counts for another one.
function prelude(maxKeyBytes, maxValueBytes, trigger) {
  const api = buildApi(trigger);
  const output = { log: '' };
  const state = { calls: [], settled: false, error: null, rule: null, cache: {}, cacheOps: [], redirect: null };
  active = { output, rawLogCap: 0, state, maxKeyBytes, maxValueBytes, executedRules: [] };
  let execution = 0;

  function fail(number, error) {
    if (number === execution && !state.settled) {
      state.settled = true;
      state.error = describeError(error);
    }
  }

  const controller = {
    // The console output, which the engine reads even when the execution was interrupted.
    output,

    begin(rawLogCap, executedRules) {
      execution += 1;
      output.log = '';
      state.calls = [];
      state.settled = false;
      state.error = null;
      state.rule = null;
      state.cache = {};
      state.cacheOps = [];
      state.redirect = null;
      active.rawLogCap = rawLogCap;
      active.executedRules = executedRules;
    },

    // Runs the module's top level (in this context's first execution only), then its
    // handler; a returned promise settles while the engine drains the job queue.
    // `redirectJson` is this execution's `api.redirect` context (`null`: none).
    startAction(handlerName, eventJson, secretsJson, cacheJson, redirectJson, moduleFunction) {
      const number = execution;
      try {
        if (redirectJson !== 'null') state.redirect = parse(redirectJson);
        // Most executions have no cache entries and no secrets: skip parsing `{}`.
        if (cacheJson !== '{}') {
          const entries = parse(cacheJson);
          for (const name of keys(entries)) state.cache[name] = entries[name];
        }
        const event = parse(eventJson);
        event.secrets = secretsJson === '{}' ? {} : parse(secretsJson);
        if (loadedModule === null) {
          const module = { exports: {} };
          moduleFunction.call(module.exports, module.exports, module, require);
          loadedModule = module;
        }
        const exported = loadedModule.exports;
        const handler = exported == null ? undefined : exported[handlerName];
        if (typeof handler !== 'function') throw new ErrorOf('the action does not export ' + handlerName);
        then.call(
          resolved(handler(event, api)),
          () => {
            if (number === execution) state.settled = true;
          },
          (error) => fail(number, error)
        );
      } catch (error) {
        fail(number, error);
      }
    },

    // Calls a legacy Rule `function (user, context, callback)`.
    startRule(userJson, contextJson, configurationJson, ruleFunction) {
      const number = execution;
      try {
        globalThis.UnauthorizedError = UnauthorizedError;
        globalThis.configuration = parse(configurationJson);
        const user = parse(userJson);
        const context = parse(contextJson);
        const callback = (error, nextUser, nextContext) => {
          if (number !== execution || state.settled) return;
          if (error && (error instanceof UnauthorizedError || error.name === 'UnauthorizedError')) {
            state.settled = true;
            state.calls.push(['access.deny', stringify([StringOf(error.message === undefined ? '' : error.message)])]);
          } else if (error) {
            fail(number, error);
          } else {
            try {
              const passed = { user: nextUser === undefined ? user : nextUser, context: nextContext === undefined ? context : nextContext };
              state.rule = parse(stringify(passed));
              state.settled = true;
            } catch (serialiseError) {
              fail(number, new TypeErrorOf('callback: the user or context cannot be serialised to JSON (' + describeError(serialiseError) + ')'));
            }
          }
        };
        if (typeof ruleFunction !== 'function') throw new ErrorOf('the rule is not a function (user, context, callback)');
        const result = ruleFunction(user, context, callback);
        // An async rule that rejects before calling back fails.
        if (result && typeof result.then === 'function') then.call(resolved(result), undefined, (error) => fail(number, error));
      } catch (error) {
        fail(number, error);
      }
    },

    // What the execution produced, for Rust to read element by element (a fresh array
    // of plain values, cheaper to make than an object: no getter of the code's runs):
    // [settled, error, calls, rule, cacheOps]. `calls` already holds strings; the rule's
    // state and the cache writes are JSON, and only when there are any (stringifying
    // costs more than the handler of a small action).
    finish() {
      const failed = state.error !== null;
      return [
        state.settled === true,
        state.error === null ? null : StringOf(state.error),
        failed ? [] : state.calls,
        failed || state.rule === null ? null : stringify(state.rule),
        state.cacheOps.length === 0 ? null : stringify(state.cacheOps),
      ];
    },
  };
  return controller;
}
