// passport-auth0's login in a process of its own, so that NODE_EXTRA_CA_CERTS (read once, at
// start-up) makes it trust `tessera dev --tls`: passport-auth0 builds https://DOMAIN/… itself and
// reads the profile from /userinfo with the token in the query (`access_token=`, RFC 6750 §2.3).
//
// Starts an Express app with express-session + passport + passport-auth0 on 127.0.0.1, signs in
// through it with a cookie client (app /login → Tessera /authorize → the hosted login form → the
// app's /callback → /profile), and prints `RESULT {profile, accessToken}` on one line.
// Configured by DOMAIN (host:port), CLIENT_ID, CLIENT_SECRET, EMAIL, PASSWORD and APP_PORT (the
// port of the callback registered for the application).

import { randomBytes } from 'node:crypto';

import express from 'express';
import session from 'express-session';
import passport from 'passport';
import Auth0Strategy from 'passport-auth0';

import { listen } from './http.mjs';
import { cookieClient, signIn } from './login.mjs';

const { DOMAIN, CLIENT_ID, CLIENT_SECRET, EMAIL, PASSWORD, APP_PORT } = process.env;

let accessToken;
const app = express();
app.use(session({ secret: randomBytes(32).toString('hex'), resave: false, saveUninitialized: false }));
app.use(passport.initialize());
app.use(passport.session());
passport.serializeUser((user, done) => done(null, user));
passport.deserializeUser((user, done) => done(null, user));
app.get('/login', passport.authenticate('auth0', { scope: 'openid profile email' }));
app.get('/callback', passport.authenticate('auth0', { failWithError: true }), (req, res) => res.redirect('/profile'));
app.get('/profile', (req, res) => (req.user ? res.json(req.user) : res.status(401).json({ error: 'not signed in' })));
// eslint-disable-next-line no-unused-vars
app.use((error, req, res, next) => res.status(error.status || 500).json({ error: error.message }));

const server = await listen(app, Number(APP_PORT));
passport.use(new Auth0Strategy({
  domain: DOMAIN,
  clientID: CLIENT_ID,
  clientSecret: CLIENT_SECRET,
  callbackURL: `${server.url}/callback`,
  state: true,
}, (token, refreshToken, extraParams, profile, done) => {
  accessToken = token;
  done(null, { id: profile.id, displayName: profile.displayName, emails: profile.emails, nickname: profile.nickname, raw: profile._json });
}));
try {
  const browser = cookieClient();
  const start = await browser.request(`${server.url}/login`);
  const authorizeUrl = start.headers.get('location');
  if (start.status !== 302 || !authorizeUrl) throw new Error(`/login answered ${start.status}`);
  const callback = await signIn(browser, authorizeUrl, { email: EMAIL, password: PASSWORD });
  const back = await browser.request(callback.href);
  if (back.status !== 302) throw new Error(`/callback answered ${back.status}: ${await back.text()}`);
  const profile = await browser.request(`${server.url}/profile`);
  process.stdout.write(`RESULT ${JSON.stringify({ authorizeUrl, status: profile.status, profile: await profile.json(), accessToken })}\n`);
} finally {
  await server.close();
}
