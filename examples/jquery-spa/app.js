// Auth0's jQuery "Calling an API" quickstart (03), authorization (04) and token renewal (05), pointed at
// Tessera. Only the configuration differs: on plain http the token issuer is passed as an
// override, because auth0-js assumes https://DOMAIN/ otherwise.
/* global $, auth0 */
'use strict';

var webAuth;
var config;
var renewTimer;
var REQUESTED_SCOPES = 'openid profile read:messages write:messages';

function storeSession(result) {
  var expiresAt = JSON.stringify(result.expiresIn * 1000 + Date.now());
  localStorage.setItem('access_token', result.accessToken);
  localStorage.setItem('id_token', result.idToken);
  localStorage.setItem('expires_at', expiresAt);
  // The granted scopes; Auth0's samples fall back to the requested ones when absent.
  localStorage.setItem('scopes', JSON.stringify((result.scope || REQUESTED_SCOPES).split(' ')));
  scheduleRenewal();
}

function clearSession() {
  localStorage.removeItem('access_token');
  localStorage.removeItem('id_token');
  localStorage.removeItem('expires_at');
  localStorage.removeItem('scopes');
  clearTimeout(renewTimer);
}

function expiresAt() {
  return JSON.parse(localStorage.getItem('expires_at') || '0');
}

function isAuthenticated() {
  return Date.now() < expiresAt();
}

function userHasScopes(scopes) {
  var granted = JSON.parse(localStorage.getItem('scopes') || '[]');
  return scopes.every(function (scope) { return granted.indexOf(scope) !== -1; });
}

function showError(message) {
  $('#auth-error').text(message || '');
}

function displayButtons() {
  var loggedIn = isAuthenticated();
  $('#qsLoginBtn').prop('hidden', loggedIn);
  $('#qsLogoutBtn').prop('hidden', !loggedIn);
  $('#btn-profile-view').prop('hidden', !loggedIn);
  $('#btn-renew').prop('hidden', !loggedIn);
  $('#btn-admin-view').prop('hidden', !(loggedIn && userHasScopes(['write:messages'])));
  $('#login-status').text(loggedIn ? 'You are logged in!' : 'You are not logged in! Please log in to continue.');
  $('#token-expiry').text(loggedIn ? new Date(expiresAt()).toISOString() : '—');
}

function showView(id) {
  $('#home-view, #profile-view, #ping-view, #admin-view').prop('hidden', true);
  $(id).prop('hidden', false);
}

function handleAuthentication() {
  webAuth.parseHash(function (err, result) {
    if (result && result.accessToken && result.idToken) {
      window.location.hash = '';
      history.replaceState(null, '', window.location.pathname);
      storeSession(result);
      showView('#home-view');
    } else if (err) {
      showError('Login failed: ' + (err.errorDescription || err.error_description || err.error || err));
    }
    displayButtons();
  });
}

function getProfile() {
  var accessToken = localStorage.getItem('access_token');
  if (!accessToken) {
    return;
  }
  webAuth.client.userInfo(accessToken, function (err, profile) {
    if (err) {
      showError('Could not load the profile: ' + (err.description || err.error || err));
      return;
    }
    $('#profile-view .nickname').text(profile.nickname);
    $('#profile-view img.avatar').attr('src', profile.picture);
    $('#profile-view .full-profile').text(JSON.stringify(profile, null, 2));
  });
}

// Renews the tokens without leaving the page: a hidden iframe, prompt=none, web_message.
function renewTokens() {
  webAuth.checkSession({}, function (err, result) {
    if (err) {
      $('#renew-status').text('Could not renew: ' + (err.error_description || err.errorDescription || err.error));
      showError('Could not renew the tokens: ' + (err.error_description || err.errorDescription || err.error));
    } else {
      storeSession(result);
      $('#renew-status').text('Tokens renewed');
    }
    displayButtons();
  });
}

// Renews a minute before the access token expires.
function scheduleRenewal() {
  clearTimeout(renewTimer);
  var delay = expiresAt() - Date.now() - 60 * 1000;
  if (delay > 0) {
    renewTimer = setTimeout(renewTokens, Math.min(delay, 2147483647));
  }
}

function callAPI(endpoint, secured, method, target) {
  var headers = {};
  if (secured && localStorage.getItem('access_token')) {
    headers.Authorization = 'Bearer ' + localStorage.getItem('access_token');
  }
  $.ajax({ url: config.apiUrl + endpoint, method: method || 'GET', headers: headers })
    .done(function (result) {
      $(target || '#ping-message').text(result.message);
    })
    .fail(function (jqXHR) {
      $(target || '#ping-message').text('Request failed: ' + jqXHR.statusText);
    });
}

function start() {
  var options = {
    domain: config.domain,
    clientID: config.clientId,
    redirectUri: window.location.origin,
    audience: config.audience,
    responseType: 'token id_token',
    scope: REQUESTED_SCOPES,
    leeway: 60
  };
  if (config.tokenIssuer && config.tokenIssuer.indexOf('http://') === 0) {
    options.overrides = { __token_issuer: config.tokenIssuer };
  }
  webAuth = new auth0.WebAuth(options);
  window.webAuth = webAuth;

  $('#btn-home-view').click(function () { showView('#home-view'); });
  $('#btn-profile-view').click(function () { showView('#profile-view'); getProfile(); });
  $('#btn-ping-view').click(function () { showView('#ping-view'); });
  $('#btn-admin-view').click(function () { showView('#admin-view'); });
  $('#btn-ping-admin').click(function () { callAPI('/api/admin', true, 'POST', '#admin-message'); });
  $('#qsLoginBtn').click(function (e) { e.preventDefault(); webAuth.authorize(); });
  $('#qsLogoutBtn').click(function (e) {
    e.preventDefault();
    clearSession();
    webAuth.logout({ returnTo: window.location.origin, clientID: config.clientId });
  });
  $('#btn-renew').click(renewTokens);
  $('#btn-ping-public').click(function () { callAPI('/api/public', false); });
  $('#btn-ping-private').click(function () { callAPI('/api/private', true); });
  $('#btn-ping-private-scoped').click(function () { callAPI('/api/private-scoped', true); });

  if (window.location.hash) {
    handleAuthentication();
  } else {
    if (isAuthenticated()) {
      scheduleRenewal();
    }
    displayButtons();
  }
}

$(function () {
  $.getJSON('/auth_config.json')
    .done(function (loaded) {
      config = loaded;
      start();
    })
    .fail(function () {
      showError('Could not load /auth_config.json');
    });
});
