// The sample APIs of Auth0's Express quickstarts, one per verifier stack, each with
// /api/public, /api/private (any valid token) and /api/private-scoped (read:messages).

import express from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';
import { expressjwt } from 'express-jwt';
import jwksRsa from 'jwks-rsa';
import jwtAuthz from 'express-jwt-authz';

export const MESSAGES = {
  public: "Hello from a public endpoint! You don't need to be authenticated to see this.",
  private: 'Hello from a private endpoint! You need to be authenticated to see this.',
  scoped: 'Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this.',
};

function sampleApi(checkJwt, checkScopes, claimsOf) {
  const app = express();
  app.get('/api/public', (req, res) => res.json({ message: MESSAGES.public }));
  app.get('/api/private', checkJwt, (req, res) => res.json({ message: MESSAGES.private, claims: claimsOf(req) }));
  app.get('/api/private-scoped', checkJwt, checkScopes, (req, res) =>
    res.json({ message: MESSAGES.scoped, claims: claimsOf(req) }));
  // What the samples do with errors: the status the middleware chose, its WWW-Authenticate.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (err.headers) res.set(err.headers);
    res.status(err.status || 500).json({ code: err.code, message: err.message, inner: err.inner?.message });
  });
  return app;
}

/** express-oauth2-jwt-bearer: `auth({issuerBaseURL, audience})` + `requiredScopes('read:messages')`. */
export function bearerApi(options) {
  return sampleApi(auth(options), requiredScopes('read:messages'), (req) => req.auth.payload);
}

/**
 * express-jwt + jwks-rsa, as in Auth0's older Express samples, + express-jwt-authz.
 * express-jwt ≥ 7 puts the claims on `req.auth` (6.x used `req.user`), so express-jwt-authz,
 * which reads `req.user` by default, needs `customUserKey: 'auth'`.
 */
export function expressJwtApi({ jwksUri, issuer, audience, algorithms = ['RS256'] }) {
  const checkJwt = expressjwt({
    secret: jwksRsa.expressJwtSecret({ cache: true, rateLimit: true, jwksRequestsPerMinute: 5, jwksUri }),
    audience,
    issuer,
    algorithms,
  });
  return sampleApi(checkJwt, jwtAuthz(['read:messages'], { customUserKey: 'auth' }), (req) => req.auth);
}
