// Submits the form_post authorization response (OAuth 2.0 Form Post Response Mode).
document.getElementById('form-post').submit();
