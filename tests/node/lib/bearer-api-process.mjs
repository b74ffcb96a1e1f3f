// express-oauth2-jwt-bearer's sample API (lib/apis.mjs) in a process of its own, so that
// NODE_EXTRA_CA_CERTS — which Node reads once, at start-up — can be set for it, as a developer
// would for an Express API trusting `tessera dev --tls`. Configured by ISSUER_BASE_URL and
// AUDIENCE; prints "listening <url>".

import { bearerApi } from './apis.mjs';
import { listen } from './http.mjs';

const api = await listen(bearerApi({ issuerBaseURL: process.env.ISSUER_BASE_URL, audience: process.env.AUDIENCE }));
process.stdout.write(`listening ${api.url}\n`);
