// A vanilla JS single-page app on Auth0's @auth0/auth0-spa-js 2.x (the UMD bundle from npm),
// pointed at Tessera: authorization code + PKCE with loginWithRedirect/handleRedirectCallback,
// getUser, getTokenSilently, logout, and calls to the sample API. The configuration comes from
// /auth_config.json (served by `tessera dev`); `domain` is Tessera's http://localhost URL,
// which spa-js uses as given (its token issuer is then `<domain>/`, Tessera's issuer), or
// with `tessera dev --tls` the host and port alone, to which spa-js adds https:// as for Auth0.
//
// Two ways to renew tokens silently, chosen with /spa-js/?mode=refresh (the default) or
// /spa-js/?mode=iframe and kept in sessionStorage across the login redirect:
// - refresh: useRefreshTokens, offline_access → POST /oauth/token grant_type=refresh_token;
// - iframe:  no refresh tokens → a hidden iframe to /authorize with prompt=none and
//            response_mode=web_message;
// - dpop:    refresh tokens with `useDpop: true` (RFC 9449): tokens bound to a key the SDK
//            keeps in IndexedDB, the API called through `createFetcher()` with a proof.
// Tokens are cached in localStorage in both modes. `window.auth0Client` is the client.
/* global auth0 */
'use strict';

(function () {
  var MODE_KEY = 'tessera.spa-js.mode';
  var MODES = {
    refresh: 'refresh tokens (POST /oauth/token, grant_type=refresh_token)',
    iframe: 'hidden iframe (/authorize, prompt=none, response_mode=web_message)',
    dpop: 'DPoP-bound refresh tokens (POST /oauth/token with a DPoP proof)',
  };
  var BASE_PATH = '/spa-js/';

  var client;
  var config;

  function $(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    $(id).textContent = text;
  }

  function showError(error) {
    var message = '';
    if (error) {
      message = error.error_description || error.message || String(error);
      if (error.error && message.indexOf(error.error) !== 0) message = error.error + ': ' + message;
      console.error('spa-js sample:', error);
    }
    setText('error', message);
  }

  /** The mode from ?mode=…, remembered in sessionStorage (the login redirect drops the query). */
  function currentMode() {
    var wanted = new URLSearchParams(window.location.search).get('mode');
    if (wanted && Object.prototype.hasOwnProperty.call(MODES, wanted)) {
      sessionStorage.setItem(MODE_KEY, wanted);
    }
    var mode = sessionStorage.getItem(MODE_KEY);
    return Object.prototype.hasOwnProperty.call(MODES, mode) ? mode : 'refresh';
  }

  function base64url(bytes) {
    var binary = '';
    bytes.forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  /** A short fingerprint of a token: the first 16 characters of base64url(SHA-256(token)). */
  async function fingerprint(token) {
    var digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
    return base64url(new Uint8Array(digest)).slice(0, 16);
  }

  function jwtPayload(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part));
    } catch (e) {
      return {};
    }
  }

  async function showToken(token) {
    setText('token-fingerprint', await fingerprint(token));
    var exp = jwtPayload(token).exp;
    setText('token-expiry', exp ? 'expires ' + new Date(exp * 1000).toISOString() : '');
  }

  async function render() {
    var loggedIn = await client.isAuthenticated();
    $('login').hidden = loggedIn;
    $('logout').hidden = !loggedIn;
    $('get-token').hidden = !loggedIn;
    $('renew-token').hidden = !loggedIn;
    $('profile').hidden = !loggedIn;
    setText('status', loggedIn ? 'Logged in' : 'Logged out');
    if (loggedIn) {
      var user = await client.getUser();
      setText('user-name', (user && user.nickname) || '—');
      setText('user-profile', JSON.stringify(user, null, 2));
    } else {
      setText('user-name', '—');
      setText('user-profile', '');
      setText('token-fingerprint', '—');
      setText('token-expiry', '');
    }
    document.body.dataset.ready = 'true';
  }

  async function getToken(cacheMode) {
    showError(null);
    try {
      var options = { detailedResponse: true };
      if (cacheMode) options.cacheMode = cacheMode;
      var result = await client.getTokenSilently(options);
      await showToken(result.access_token);
      setText('token-source', cacheMode === 'off' ? MODES[currentMode()] : 'cache, else ' + MODES[currentMode()]);
    } catch (error) {
      showError(error);
    }
  }

  async function callApi(path, withToken) {
    showError(null);
    setText('api-status', '…');
    setText('api-result', '');
    var headers = {};
    try {
      var response;
      if (withToken && currentMode() === 'dpop' && (await client.isAuthenticated())) {
        // The SDK's fetcher sends `Authorization: DPoP …` and a fresh proof per request (a
        // proof only with a `dpopNonceId`: where it keeps the API's nonce, if it sends one).
        var fetcher = client.createFetcher({ dpopNonceId: 'sample-api' });
        response = await fetcher.fetchWithAuth(config.apiUrl + path, undefined, {
          audience: config.audience,
          scope: client.options.authorizationParams.scope.split(' '),
        });
      } else {
        if (withToken && (await client.isAuthenticated())) {
          headers.Authorization = 'Bearer ' + (await client.getTokenSilently());
        }
        response = await fetch(config.apiUrl + path, { headers: headers });
      }
      var body = await response.json().catch(function () { return {}; });
      setText('api-status', String(response.status));
      setText('api-result', response.ok ? body.message : 'Request failed: ' + (response.statusText || response.status));
    } catch (error) {
      setText('api-status', 'error');
      showError(error);
    }
  }

  async function logout() {
    showError(null);
    try {
      // spa-js's logout() only clears the local cache and goes to /v2/logout (which ends
      // Tessera's session and revokes that session's refresh tokens); revoke the refresh token
      // explicitly as well (POST /oauth/revoke). Does nothing in iframe mode.
      await client.revokeRefreshToken();
    } catch (error) {
      console.warn('spa-js sample: revoking the refresh token failed', error);
    }
    await client.logout({ logoutParams: { returnTo: window.location.origin + BASE_PATH } });
  }

  async function start() {
    var mode = currentMode();
    setText('mode', mode);
    setText('token-source', MODES[mode]);
    config = await (await fetch('/auth_config.json')).json();
    var useRefreshTokens = mode === 'refresh' || mode === 'dpop';
    var scope = 'openid profile read:messages' + (useRefreshTokens ? ' offline_access' : '');
    client = await auth0.createAuth0Client({
      domain: config.domain,
      clientId: config.clientId,
      authorizationParams: {
        redirect_uri: window.location.origin + BASE_PATH,
        audience: config.audience,
        scope: scope,
      },
      useRefreshTokens: useRefreshTokens,
      useDpop: mode === 'dpop',
      cacheLocation: 'localstorage',
    });
    window.auth0Client = client;

    $('login').addEventListener('click', function () {
      showError(null);
      client.loginWithRedirect().catch(showError);
    });
    $('logout').addEventListener('click', function () { logout().catch(showError); });
    $('get-token').addEventListener('click', function () { getToken(); });
    $('renew-token').addEventListener('click', function () { getToken('off'); });
    $('call-public').addEventListener('click', function () { callApi('/api/public', false); });
    $('call-private').addEventListener('click', function () { callApi('/api/private', true); });
    $('call-scoped').addEventListener('click', function () { callApi('/api/private-scoped', true); });

    var query = new URLSearchParams(window.location.search);
    if (query.has('state') && (query.has('code') || query.has('error'))) {
      try {
        await client.handleRedirectCallback();
      } catch (error) {
        showError(error);
      }
      window.history.replaceState(null, '', BASE_PATH);
    }
    await render();
    if (await client.isAuthenticated()) await getToken();
  }

  start().catch(function (error) {
    showError(error);
    setText('status', 'Could not start');
    document.body.dataset.ready = 'true';
  });
})();
