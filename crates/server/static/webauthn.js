// Security keys and passkeys on the hosted pages: hands the server's options to
// navigator.credentials.get/create and posts the response in the page's form (base64url
// fields). Without WebAuthn in the browser the form says so; nothing is sent.
(function () {
  'use strict';
  function fromB64(text) {
    var s = text.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var raw = atob(s), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function toB64(buffer) {
    var bytes = new Uint8Array(buffer), raw = '';
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function set(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }
  function fail(form, message) {
    var note = form.querySelector('.webauthn-error');
    if (note) { note.textContent = message; note.hidden = false; }
  }
  function descriptors(list) {
    return (list || []).map(function (d) {
      return { type: d.type, id: fromB64(d.id), transports: d.transports };
    });
  }
  function get(form, options) {
    options.challenge = fromB64(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return navigator.credentials.get({ publicKey: options }).then(function (cred) {
      set(form, 'credential_id', toB64(cred.rawId));
      set(form, 'client_data_json', toB64(cred.response.clientDataJSON));
      set(form, 'authenticator_data', toB64(cred.response.authenticatorData));
      set(form, 'signature', toB64(cred.response.signature));
      if (cred.response.userHandle) set(form, 'user_handle', toB64(cred.response.userHandle));
    });
  }
  function create(form, options) {
    options.challenge = fromB64(options.challenge);
    options.user.id = fromB64(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return navigator.credentials.create({ publicKey: options }).then(function (cred) {
      set(form, 'client_data_json', toB64(cred.response.clientDataJSON));
      set(form, 'attestation_object', toB64(cred.response.attestationObject));
      var transports = cred.response.getTransports ? cred.response.getTransports() : [];
      set(form, 'transports', transports.join(','));
      set(form, 'attachment', cred.authenticatorAttachment || '');
    });
  }
  document.querySelectorAll('form[data-webauthn]').forEach(function (form) {
    var button = form.querySelector('button');
    if (!window.PublicKeyCredential) {
      fail(form, 'This browser cannot use security keys or passkeys.');
      if (button) button.disabled = true;
      return;
    }
    form.addEventListener('submit', function (event) {
      if (form.dataset.done === '1') return;
      event.preventDefault();
      var options = JSON.parse(form.dataset.options);
      var ceremony = form.dataset.webauthn === 'create' ? create : get;
      ceremony(form, options).then(function () {
        form.dataset.done = '1';
        form.submit();
      }, function () {
        fail(form, 'The security key or passkey did not answer, or the request was cancelled. Try again.');
      });
    });
  });
})();
