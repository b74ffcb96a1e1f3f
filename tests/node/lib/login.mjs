// A browser-like HTTP client for the hosted login page, without a browser: keeps cookies, never
// follows redirects by itself. Enough to take an /authorize URL built by a client library through
// /u/login and back to the application's redirect_uri (the URL the library then validates).

/** A cookie jar over fetch (redirect: 'manual'); cookies are kept per name, Max-Age=0 deletes. */
export function cookieClient() {
  const jar = new Map();
  const remember = (response) => {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  };
  const request = async (url, { method = 'GET', form } = {}) => {
    const headers = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form);
    }
    const response = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10000) });
    remember(response);
    return response;
  };
  return { request, cookies: jar };
}

/** The value of a hidden input `name` in an HTML page (HTML entities decoded). */
export function hiddenField(html, name) {
  const match = new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(html);
  const value = match && /value="([^"]*)"/.exec(match[0]);
  if (!value) throw new Error(`no hidden field ${name} in the page:\n${html.slice(0, 2000)}`);
  return value[1]
    .replace(/&#x([0-9a-f]+);/gi, (_, hex) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const location = (response, base) => {
  const to = response.headers.get('location');
  if (!to) throw new Error(`expected a redirect, got ${response.status} from ${response.url}`);
  return new URL(to, base).href;
};

/**
 * Follows `authorizeUrl` with the client `browser` (from cookieClient()): when the server asks
 * for a login (302 to /u/login) fills the form with `email`/`password`; follows /authorize/resume.
 * Returns the URL the server finally redirected to outside its own origin (the redirect_uri with
 * code, state and iss), as a URL. Fails on any unexpected status.
 */
export async function signIn(browser, authorizeUrl, { email, password }) {
  const origin = new URL(authorizeUrl).origin;
  let url = new URL(authorizeUrl).href;
  for (let hop = 0; hop < 6; hop += 1) {
    const response = await browser.request(url);
    if (response.status === 200 && new URL(url).pathname === '/u/login') {
      const page = await response.text();
      const post = await browser.request(new URL('/u/login', origin).href, {
        method: 'POST',
        form: { state: hiddenField(page, 'state'), csrf: hiddenField(page, 'csrf'), username: email, password },
      });
      if (post.status !== 303) {
        throw new Error(`login POST answered ${post.status}: ${(await post.text()).slice(0, 1000)}`);
      }
      url = location(post, origin);
      continue;
    }
    if (response.status < 300 || response.status > 399) {
      throw new Error(`GET ${url} answered ${response.status}: ${(await response.text()).slice(0, 1000)}`);
    }
    await response.body?.cancel();
    url = location(response, url);
    if (new URL(url).origin !== origin) return new URL(url);
  }
  throw new Error(`too many redirects, last at ${url}`);
}
