// Delivers a web_message authorization response to the page that opened this one in a
// hidden iframe (silent authentication). The target origin is the registered origin of
// the redirect_uri, so no other page can read the response.
(function () {
  var el = document.getElementById('authorization-response');
  var target = el.getAttribute('data-origin');
  var response = JSON.parse(el.getAttribute('data-response'));
  var message = { type: 'authorization_response', response: response };
  (window.opener || window.parent).postMessage(message, target);
})();
