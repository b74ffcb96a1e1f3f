// Peer protected API for Tessera's API-protection benchmark: Express with
// express-oauth2-jwt-bearer, the Node.js library Auth0's API quickstarts use,
// guarding the same route the Tessera sample API guards. It verifies the same
// Tessera-issued RS256 tokens against the same running Tessera: discovery and
// the JWKS are fetched on the first protected request, then cached (jose's
// remote JWK set), so the steady state is one RSA verification per request.
//
// Environment:
//   PEER_API_PORT      port to listen on (127.0.0.1 only); required
//   PEER_API_ISSUER    issuer base URL, e.g. http://localhost:3000/ (required)
//   PEER_API_AUDIENCE  the API identifier (default https://quickstarts/api)
//
// Routes: GET /api/public (no token), GET /api/private (valid token for the
// audience; RFC 6750 errors from express-oauth2-jwt-bearer otherwise).
// One Node.js process: its plain deployment.
import express from 'express';
import { auth } from 'express-oauth2-jwt-bearer';

const port = Number.parseInt(process.env.PEER_API_PORT ?? process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('peer-api: set PEER_API_PORT (or pass the port as the first argument)');
  process.exit(2);
}
const issuerBaseURL = process.env.PEER_API_ISSUER;
if (!issuerBaseURL) {
  console.error('peer-api: set PEER_API_ISSUER (the Tessera issuer, e.g. http://localhost:3000/)');
  process.exit(2);
}
const audience = process.env.PEER_API_AUDIENCE ?? 'https://quickstarts/api';

const app = express();
app.disable('x-powered-by');

app.get('/api/public', (_req, res) => {
  res.json({ message: "Hello from a public endpoint! You don't need to be authenticated to see this." });
});

app.get('/api/private', auth({ issuerBaseURL, audience }), (_req, res) => {
  res.json({ message: 'Hello from a private endpoint! You need to be authenticated to see this.' });
});

// express-oauth2-jwt-bearer's errors carry their status and WWW-Authenticate header.
app.use((err, _req, res, _next) => {
  if (err.headers) res.set(err.headers);
  res.status(err.status ?? 500).json({ error: err.code ?? 'server_error', error_description: err.message });
});

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`peer-api listening on http://127.0.0.1:${port} (issuer ${issuerBaseURL}, audience ${audience})`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
